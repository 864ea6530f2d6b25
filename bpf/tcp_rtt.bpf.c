// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * tcp-rtt: the smoothed RTT (srtt, µs) of TCP sockets, into a quarter-octave
 * histogram per local endpoint (per flow at flow granularity). A socket is
 * sampled at most once per sample interval, and only when it has received an
 * ACK since its previous sample (tcp_sock.rcv_tstamp moved): srtt changes only
 * then, and an idle connection's RTT is not counted again and again.
 *
 * Where the kernel can walk a map from a program (bpf_for_each_map_elem,
 * 5.13+), no program runs per packet:
 *   rtt_track   (inet_sock_set_state) keeps each socket from ESTABLISHED to
 *               CLOSE in tcp_rtt_sockets, with its endpoint; at CLOSE it takes
 *               the socket's last sample, so connections shorter than the
 *               interval are sampled too;
 *   rtt_walk    (run by user space every sample interval, BPF_PROG_TEST_RUN)
 *               reads srtt of every tracked socket;
 *   rtt_adopt   (tcp_probe, attached only for a while after start) adopts the
 *               connections that were established before the agent.
 * A sample is claimed with a compare-and-exchange of the socket's last
 * sampled ACK time, so the walk and the close never count one twice.
 *
 * Elsewhere (5.10) tcp_probe samples each socket from its received segments:
 * at its first segment in a window that its previous incoming segment was not
 * in. It decides from the socket alone, which the receive path is about to
 * touch anyway.
 *
 * Programs that read TCP fields come in two variants, of which the agent
 * loads the one this kernel can run: through the bpf_rdonly_cast kfunc (6.2+)
 * and, suffixed __skc_cast, through the bpf_skc_to_tcp_sock helper (5.9+).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "flowtel_common.bpf.h"
#include "tcp_rtt.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The sample window in jiffies (user space converts sampleIntervalMs with CONFIG_HZ). */
const volatile __u32 tcp_rtt_sample_interval_jiffies = 13;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct tcp_rtt_key);
	__type(value, struct flowtel_histogram);
} tcp_rtt_histograms SEC(".maps");

/* The row key of a socket: its endpoint, and at flow granularity its peer (`role`: FLOWTEL_ROLE_*). */
static __always_inline void endpoint_of(struct flowtel_endpoint_key *endpoint, struct sock *sk, int role)
{
	flowtel_endpoint_of_sock(endpoint, sk);
	if (flowtel_flow_granularity) {
		struct flowtel_tuple tuple = {};

		flowtel_fill_tuple(&tuple, sk);
		flowtel_endpoint_set_peer_role(endpoint, &tuple, role);
	}
}

static __always_inline void add_sample(const struct tcp_rtt_key *key, __u32 srtt_us)
{
	struct flowtel_histogram *h = flowtel_hist_row(&tcp_rtt_histograms, key);

	if (h)
		flowtel_hist_add(h, srtt_us);
}

static __always_inline int sample(struct sock *sk, bool kfunc)
{
	/* tcp_probe fires in tcp_rcv_established: always a full TCP socket (the helper checks anyway). */
	struct tcp_sock *tp = flowtel_tcp_sock(sk, kfunc);
	__u32 window = tcp_rtt_sample_interval_jiffies;

	if (window == 0 || !tp)
		return 0;
	/* Neither data received nor any acked but the SYN: the first segment of the connection. */
	bool first = tp->bytes_received == 0 && tp->bytes_acked <= 1;

	/* rcv_tstamp is tcp_jiffies32, the low 32 bits of jiffies; tcp_probe runs before tcp_ack updates it. */
	__u32 now = (__u32)bpf_jiffies64();
	__u32 previous = tp->rcv_tstamp;

	/*
	 * A busy connection's previous segment came in this very jiffy: same
	 * window, decided without the two divisions (the common case under load).
	 */
	if (!first && (now == previous || now / window == previous / window))
		return 0;

	__u32 srtt_us = tp->srtt_us >> 3;

	if (srtt_us == 0)
		return 0; /* no RTT sample yet */

	struct tcp_rtt_key key = {};

	endpoint_of(&key.endpoint, sk, FLOWTEL_ROLE_UNKNOWN);
	add_sample(&key, srtt_us);
	return 0;
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(tcp_probe, struct sock *sk, const struct sk_buff *skb)
{
	return sample(sk, FLOWTEL_CAST_KFUNC);
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(tcp_probe__skc_cast, struct sock *sk, const struct sk_buff *skb)
{
	return sample(sk, FLOWTEL_CAST_HELPER);
}

/* ---- Reading sockets instead of segments (kernels with bpf_for_each_map_elem) ---- */

/* A tracked socket: kernel-side only, user space reads only how many there are. */
struct tcp_rtt_socket {
	struct tcp_rtt_key key;	/* its histogram row, fixed at ESTABLISHED (or adoption) */
	__u64 sampled_ack;	/* rcv_tstamp + 1 of its last sample; 0: never sampled */
};

/*
 * Sockets from ESTABLISHED to CLOSE, keyed by their kernel address: CLOSE
 * deletes the entry before the kernel frees the socket (see tracked_sockets
 * in tcp_connections.bpf.c). Not preallocated: a deleted element is freed
 * only after an RCU grace period, so a walk that still holds it finds it
 * unchanged (claimed by the close), never reused by another socket. Sized by
 * the agent (maxTrackedSockets); a socket that finds it full is counted as
 * map_full and not sampled.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct tcp_rtt_socket);
} tcp_rtt_sockets SEC(".maps");

/* `flags`: BPF_ANY for a socket just established (a fresh start), BPF_NOEXIST to adopt one. */
static __always_inline void track(struct sock *sk, __u64 flags, int role)
{
	__u64 address = (__u64)sk;
	struct tcp_rtt_socket entry = {};

	endpoint_of(&entry.key.endpoint, sk, role);
	if (bpf_map_update_elem(&tcp_rtt_sockets, &address, &entry, flags) == -FLOWTEL_E2BIG)
		flowtel_count_loss(FLOWTEL_LOSS_MAP_FULL);
}

/*
 * Claims the sample of a socket whose last ACK arrived at `rcv_tstamp`: true
 * once per new ACK time, whoever (walk or close) asks first.
 */
static __always_inline bool claim(struct tcp_rtt_socket *entry, __u32 rcv_tstamp)
{
	__u64 seen = entry->sampled_ack;
	__u64 now = (__u64)rcv_tstamp + 1;

	return seen != now && __sync_val_compare_and_swap(&entry->sampled_ack, seen, now) == seen;
}

static __always_inline int on_state_change(struct sock *sk, int oldstate, int newstate, bool kfunc)
{
	if (newstate != TCP_ESTABLISHED && newstate != TCP_CLOSE)
		return 0;
	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	if (newstate == TCP_ESTABLISHED) {
		track(sk, BPF_ANY, flowtel_role_of_transition(oldstate, newstate));
		return 0;
	}

	__u64 address = (__u64)sk;
	struct tcp_rtt_socket *entry = bpf_map_lookup_elem(&tcp_rtt_sockets, &address);

	if (!entry)
		return 0;
	/* The last word: what the connection's final ACKs made of srtt, if no walk took it yet. */
	struct tcp_sock *tp = flowtel_tcp_sock(sk, kfunc);
	__u32 srtt_us = tp ? tp->srtt_us >> 3 : 0;

	if (srtt_us && claim(entry, tp->rcv_tstamp))
		add_sample(&entry->key, srtt_us);
	bpf_map_delete_elem(&tcp_rtt_sockets, &address);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(rtt_track, struct sock *sk, int oldstate, int newstate)
{
	return on_state_change(sk, oldstate, newstate, FLOWTEL_CAST_KFUNC);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(rtt_track__skc_cast, struct sock *sk, int oldstate, int newstate)
{
	return on_state_change(sk, oldstate, newstate, FLOWTEL_CAST_HELPER);
}

/* tcp_probe fires only for established sockets, under the socket's lock, which their CLOSE takes too. */
SEC("tp_btf/tcp_probe")
int BPF_PROG(rtt_adopt, struct sock *sk, const struct sk_buff *skb)
{
	__u64 address = (__u64)sk;

	if (!bpf_map_lookup_elem(&tcp_rtt_sockets, &address))
		track(sk, BPF_NOEXIST, FLOWTEL_ROLE_UNKNOWN);
	return 0;
}


/*
 * One tracked socket, read through its address (this program has no typed
 * socket: bpf_probe_read_kernel). The walk runs under RCU, and TCP sockets
 * are freed RCU-safely, so the memory is a TCP socket, possibly already
 * closed: then its entry was claimed by the close, or is about to be deleted
 * (a socket that is no longer established or closing down is skipped).
 */
static long walk_one(struct bpf_map *map, __u64 *address, struct tcp_rtt_socket *entry, __u32 *visited)
{
	struct tcp_sock *tp = (struct tcp_sock *)*address;
	__u8 state = BPF_CORE_READ(tp, inet_conn.icsk_inet.sk.__sk_common.skc_state);
	__u32 srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;
	__u32 rcv_tstamp = BPF_CORE_READ(tp, rcv_tstamp);

	(*visited)++;
	if (state == TCP_CLOSE || state == TCP_LISTEN || state == TCP_SYN_SENT || state == TCP_SYN_RECV)
		return 0;
	if (srtt_us && claim(entry, rcv_tstamp))
		add_sample(&entry->key, srtt_us);
	return 0;
}

/* Returns the sockets visited: how many the table holds. */
SEC("raw_tp")
int rtt_walk(void *ctx)
{
	__u32 visited = 0;

	bpf_for_each_map_elem(&tcp_rtt_sockets, walk_one, &visited, 0);
	return visited;
}
