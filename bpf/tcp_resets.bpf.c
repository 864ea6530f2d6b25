// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * tcp-resets: RSTs sent (tcp_send_reset, with the kernel's enum sk_rst_reason)
 * and received (tcp_receive_reset), per local endpoint, plus a rate-limited
 * event per reset. A reset sent for a segment that matched no socket (a port
 * nobody listens on) has no socket: it belongs to the receiving netns.
 *
 * tcp_send_reset gained its reason argument in Linux 6.10, when it also began
 * to fire for resets that answer a segment with no full socket (a closed port,
 * a TIME_WAIT or request socket). Before, tcp_send_reset__no_reason runs and
 * counts reason 0, which the agent names "unknown". The agent loads the one
 * whose arguments match this kernel's tracepoint. The reason is declared as an
 * integer: enum sk_rst_reason is missing from the vmlinux.h of older hosts.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "flowtel_common.bpf.h"
#include "tcp_resets.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Shared by all CPUs, added to atomically: see drops_count in drops.bpf.c. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct tcp_resets_key);
	__type(value, __u64);
} tcp_resets_count SEC(".maps");

struct tcp_reset_event flowtel_btf_tcp_reset_event __attribute__((unused));

static __always_inline void swap_tuple(struct flowtel_tuple *t)
{
	struct flowtel_tuple packet = *t;

	__builtin_memcpy(t->saddr, packet.daddr, 16);
	__builtin_memcpy(t->daddr, packet.saddr, 16);
	t->sport = packet.dport;
	t->dport = packet.sport;
}

/* The reset's tuple, local side first: the socket's, or that of the segment it answers (swapped). */
static __always_inline void reset_tuple(struct flowtel_tuple *tuple, const struct sock *sk, const struct sk_buff *skb)
{
	if (sk)
		flowtel_fill_tuple(tuple, (struct sock *)sk);
	else if (skb && flowtel_tuple_of_skb(tuple, skb))
		swap_tuple(tuple);
}

static __always_inline void record(const struct sock *sk, const struct sk_buff *skb, __u32 reason, __u8 direction)
{
	struct tcp_resets_key key = { .reason = reason, .direction = direction };
	struct flowtel_tuple tuple = {};
	__u8 state = 0;

	if (sk) {
		flowtel_endpoint_of_sock(&key.endpoint, sk);
		state = sk->__sk_common.skc_state;
	} else if (skb) {
		/* No socket: the RST answers this incoming segment, in its device's netns. */
		key.endpoint.netns_ino = flowtel_skb_netns(skb);
	}
	/*
	 * At pod granularity only the (rate-limited) event needs the tuple: read it
	 * after the rate limit, not for every reset (a socket-less reset reads the
	 * segment's headers with probe reads).
	 */
	if (flowtel_flow_granularity) {
		reset_tuple(&tuple, sk, skb);
		flowtel_endpoint_set_peer(&key.endpoint, &tuple);
	}
	flowtel_counter_add(&tcp_resets_count, &key, 1);

	struct tcp_reset_event *e = flowtel_event_reserve(FLOWTEL_EVENT_TCP_RESET, sizeof(*e), 0);

	if (!e)
		return;
	if (!flowtel_flow_granularity)
		reset_tuple(&tuple, sk, skb);
	e->tuple = tuple;
	e->cgroup_id = key.endpoint.cgroup_id;
	e->netns_ino = key.endpoint.netns_ino;
	e->reason = reason;
	e->direction = direction;
	e->state = state;
	__builtin_memset(e->pad, 0, sizeof(e->pad));
	flowtel_event_submit(e, sizeof(*e));
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(tcp_send_reset, const struct sock *sk, const struct sk_buff *skb, __u32 reason)
{
	record(sk, skb, reason, FLOWTEL_DIRECTION_TRANSMIT);
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(tcp_send_reset__no_reason, const struct sock *sk, const struct sk_buff *skb)
{
	record(sk, skb, 0, FLOWTEL_DIRECTION_TRANSMIT);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(tcp_receive_reset, struct sock *sk)
{
	record(sk, NULL, 0, FLOWTEL_DIRECTION_RECEIVE);
	return 0;
}
