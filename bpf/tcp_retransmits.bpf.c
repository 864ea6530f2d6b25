// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * tcp-retransmits: counts retransmitted TCP segments per socket cgroup and
 * emits a rate-limited event per retransmission.
 *
 * tp_btf/tcp_retransmit_skb fires for every attempt, including attempts that
 * fail with -EBUSY (the skb is still queued in the qdisc) and transmit
 * nothing. Counting only err == 0 and summing gso_segs is what matches the
 * kernel's own TcpRetransSegs (see DESIGN §3), less TcpExtTCPRetransFail:
 * the kernel counts a segment in TcpRetransSegs before it tries to send it,
 * and in TCPRetransFail too when that fails (an output hook drops it, the
 * device refuses it); the tracepoint then reports err != 0. We count what
 * was sent.
 *
 * Before Linux 6.17 the tracepoint has no err argument and fires only for
 * retransmits that were sent, so the same count comes from every call:
 * tcp_retransmit_skb__sent is that program. The agent loads the one whose
 * arguments match this kernel's tracepoint.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "flowtel_common.bpf.h"
#include "tcp_retransmits.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Shared by all CPUs, added to atomically: see drops_count in drops.bpf.c. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct tcp_retransmits_key);
	__type(value, struct tcp_retransmits_value);
} tcp_retransmits_by_cgroup SEC(".maps");

/* Keeps the event struct in the object's BTF for user space to read its layout. */
struct tcp_retransmit_event flowtel_btf_tcp_retransmit_event __attribute__((unused));

static __always_inline void count(const struct tcp_retransmits_key *key, __u32 segments)
{
	static const struct tcp_retransmits_value zero;
	struct tcp_retransmits_value *value = flowtel_row(&tcp_retransmits_by_cgroup, key, &zero);

	if (value) {
		flowtel_add(value->events, 1);
		flowtel_add(value->segments, segments);
	}
}

static __always_inline int on_retransmit_sent(struct sock *sk, struct sk_buff *skb)
{
	struct tcp_skb_cb *cb = (struct tcp_skb_cb *)&skb->cb[0];
	__u32 segments = BPF_CORE_READ(cb, tcp_gso_segs);
	struct tcp_retransmits_key key = {};
	struct flowtel_tuple tuple = {};

	/* gso_segs is 0 for a skb that was never segmented by GSO: one segment. */
	if (segments == 0)
		segments = 1;
	flowtel_endpoint_of_sock(&key.endpoint, sk);
	/* At pod granularity only the (rate-limited) event needs the tuple: read after the rate limit. */
	if (flowtel_flow_granularity) {
		flowtel_fill_tuple(&tuple, sk);
		flowtel_endpoint_set_peer(&key.endpoint, &tuple);
	}
	count(&key, segments);

	struct tcp_retransmit_event *e = flowtel_event_reserve(FLOWTEL_EVENT_TCP_RETRANSMIT, sizeof(*e), 0);

	if (!e)
		return 0;
	if (!flowtel_flow_granularity)
		flowtel_fill_tuple(&tuple, sk);
	e->tuple = tuple;
	e->cgroup_id = key.endpoint.cgroup_id;
	e->netns_ino = key.endpoint.netns_ino;
	e->segments = segments;
	e->state = sk->__sk_common.skc_state;
	__builtin_memset(e->pad, 0, sizeof(e->pad));
	flowtel_event_submit(e, sizeof(*e));
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcp_retransmit_skb, struct sock *sk, struct sk_buff *skb, int err)
{
	if (err != 0)
		return 0;
	return on_retransmit_sent(sk, skb);
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcp_retransmit_skb__sent, struct sock *sk, struct sk_buff *skb)
{
	return on_retransmit_sent(sk, skb);
}
