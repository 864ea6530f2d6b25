// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * drops: packets the kernel freed with a drop reason (tp_btf/kfree_skb), per
 * local endpoint and reason, plus a rate-limited event with the packet's
 * addresses and the kernel function that dropped it.
 *
 * kfree_skb is very hot: the per-reason filter is the first thing checked,
 * so unwanted reasons (NOT_SPECIFIED by default) cost one array lookup.
 *
 * The tracepoint's arguments by kernel: (skb, location) before 5.17, which
 * gives no reason and no way to tell a drop from a free: no program for it;
 * (skb, location, reason) from 5.17: kfree_skb__no_rx_sk; rx_sk, the socket a
 * received packet was dropped for, from 6.11: kfree_skb. The agent loads the
 * one whose arguments match this kernel's tracepoint. Reasons are integers
 * here: their numbering differs by kernel, and the agent fills the filter
 * from this kernel's enum skb_drop_reason.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "flowtel_common.bpf.h"
#include "drops.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* 1 = count this reason. Filled by the agent after load from the config's allow/deny lists. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DROPS_MAX_REASONS);
	__type(key, __u32);
	__type(value, __u8);
} drops_reason_filter SEC(".maps");

/*
 * Shared by all CPUs, added to atomically (flowtel_add): these events are
 * rare, so CPUs seldom meet on a row, and a per-CPU map would cost its
 * rows once per possible CPU (16 MiB more at 64 CPUs).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct drops_key);
	__type(value, struct drops_value);
} drops_count SEC(".maps");

struct drop_event flowtel_btf_drop_event __attribute__((unused));

/* The local side of a dropped packet: the socket's if it has one, else its device's netns. */
static __always_inline void drop_endpoint(struct drops_key *key, struct sk_buff *skb, struct sock *rx_sk,
					  struct flowtel_tuple *tuple, bool tuple_valid)
{
	struct sock *sk = rx_sk ? rx_sk : skb->sk;
	bool incoming = true;

	if (sk)
		flowtel_endpoint_of_sock(&key->endpoint, sk);
	else
		key->endpoint.netns_ino = flowtel_skb_netns(skb);
	if (!tuple_valid || !flowtel_flow_granularity)
		return;
	if (sk) {
		/* A packet the socket sent has the socket's own address and port as its source (IPv4 and IPv6 alike). */
		struct flowtel_tuple own = {};

		bool sent;

		flowtel_fill_tuple(&own, sk);
		sent = own.sport == tuple->sport;
#pragma unroll
		for (int i = 0; i < 16; i++)
			sent = sent && own.saddr[i] == tuple->saddr[i];
		incoming = !sent;
	}
	/* flowtel_endpoint_set_peer wants saddr local, daddr remote. */
	struct flowtel_tuple oriented = *tuple;

	if (incoming) {
		__builtin_memcpy(oriented.saddr, tuple->daddr, 16);
		__builtin_memcpy(oriented.daddr, tuple->saddr, 16);
		oriented.sport = tuple->dport;
		oriented.dport = tuple->sport;
	}
	flowtel_endpoint_set_peer(&key->endpoint, &oriented);
}

static __always_inline int on_free(struct sk_buff *skb, void *location, __u32 reason, struct sock *rx_sk)
{
	__u32 index = reason;
	__u8 *wanted = bpf_map_lookup_elem(&drops_reason_filter, &index);

	if (!wanted || !*wanted)
		return 0;

	struct drops_key key = { .reason = reason };
	struct flowtel_tuple tuple = {};
	/* At pod granularity only the (rate-limited) event needs the packet's tuple. */
	bool tuple_valid = flowtel_flow_granularity && flowtel_tuple_of_skb(&tuple, skb);
	__u32 length = skb->len;

	drop_endpoint(&key, skb, rx_sk, &tuple, tuple_valid);

	static const struct drops_value zero;
	struct drops_value *value = flowtel_row(&drops_count, &key, &zero);

	if (value) {
		flowtel_add(value->packets, 1);
		flowtel_add(value->bytes, length);
	}

	struct drop_event *e = flowtel_event_reserve(FLOWTEL_EVENT_DROP, sizeof(*e), 0);

	if (!e)
		return 0;
	if (!flowtel_flow_granularity)
		tuple_valid = flowtel_tuple_of_skb(&tuple, skb);
	e->tuple = tuple;
	e->cgroup_id = key.endpoint.cgroup_id;
	e->netns_ino = key.endpoint.netns_ino;
	e->location = (__u64)location;
	e->reason = reason;
	e->length = length;
	e->tuple_valid = tuple_valid;
	__builtin_memset(e->pad, 0, sizeof(e->pad));
	flowtel_event_submit(e, sizeof(*e));
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(kfree_skb, struct sk_buff *skb, void *location, __u32 reason, struct sock *rx_sk)
{
	return on_free(skb, location, reason, rx_sk);
}

/* Before 6.11: a received packet's socket is known only once skb->sk is set. */
SEC("tp_btf/kfree_skb")
int BPF_PROG(kfree_skb__no_rx_sk, struct sk_buff *skb, void *location, __u32 reason)
{
	return on_free(skb, location, reason, NULL);
}
