/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * The contract every Flowtel probe group shares with user space: the event
 * header on the one ring buffer, the event kinds, and the loss counters.
 * TypeScript reads all layouts and enum values from the object's BTF, so a
 * field added here needs no change on the other side.
 */
#ifndef FLOWTEL_H
#define FLOWTEL_H

/* Kinds multiplexed on the shared ring buffer. */
enum flowtel_event_kind {
	FLOWTEL_EVENT_TCP_RETRANSMIT = 1,
	FLOWTEL_EVENT_TCP_RESET = 2,
	FLOWTEL_EVENT_DROP = 3,
	FLOWTEL_EVENT_TCP_CONNECT_FAILED = 4,
};

/* Direction of traffic or of an event, seen from the local endpoint. */
enum flowtel_direction {
	FLOWTEL_DIRECTION_TRANSMIT = 1,
	FLOWTEL_DIRECTION_RECEIVE = 2,
};

/* Why an event or a count did not reach user space; index of flowtel_losses. */
enum flowtel_loss_reason {
	FLOWTEL_LOSS_RINGBUF_FULL = 0,	/* bpf_ringbuf_reserve failed */
	FLOWTEL_LOSS_MAP_FULL = 1,	/* an aggregation map had no room for a new key */
	FLOWTEL_LOSS_RATE_LIMITED = 2,	/* event suppressed by the per-CPU rate limit (counted, by design) */
	FLOWTEL_LOSS_REASON_COUNT = 3,
};

struct flowtel_event_header {
	__u16 kind;		/* enum flowtel_event_kind */
	__u16 size;		/* whole record, header included */
	__u32 cpu;
	__u64 timestamp_ns;	/* bpf_ktime_get_ns (CLOCK_MONOTONIC) */
};

/* A socket's endpoints, family-independent (IPv4 stored as ::ffff:a.b.c.d). */
struct flowtel_tuple {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;		/* host byte order */
	__u16 dport;		/* host byte order */
	__u16 family;		/* AF_INET / AF_INET6 */
	__u8 protocol;		/* IPPROTO_* */
	__u8 pad;
};

/*
 * Who an aggregated row belongs to. The local endpoint is the socket's cgroup
 * when there is a full socket, else the network namespace (socket-less
 * events such as drops before socket lookup). The peer fields are filled only
 * at flow granularity and are zero at pod granularity.
 */
struct flowtel_endpoint_key {
	__u64 cgroup_id;
	__u32 netns_ino;
	__u16 server_port;	/* flow granularity: the listening side's port */
	__u8 protocol;		/* flow granularity: IPPROTO_* */
	__u8 family;		/* flow granularity: AF_INET / AF_INET6 */
	__u8 peer_addr[16];	/* flow granularity: IPv4 mapped */
};

/* Quarter-octave histogram: bucket b covers [(4 + b%4) << (b/4 - 2), next); see flowtel_hist_bucket. */
#define FLOWTEL_HIST_BUCKETS 160

struct flowtel_histogram {
	__u64 count;
	__u64 sum;
	__u64 buckets[FLOWTEL_HIST_BUCKETS];
};

struct flowtel_rate_window {
	__u64 window_start_ns;
	__u64 emitted;
	__u64 checked_jiffies;	/* the tick in which the window was last checked against the clock */
};

#endif
