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

struct flowtel_rate_window {
	__u64 window_start_ns;
	__u64 emitted;
};

#endif
