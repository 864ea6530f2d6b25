// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * flows: bytes and packets per local endpoint and direction from cgroup_skb
 * programs attached at the cgroup v2 root (they see every socket's traffic;
 * the socket's cgroup is bpf_skb_cgroup_id). At flow granularity rows also
 * carry the peer address, server port and protocol. A flow that finds the
 * map full is added to a per-direction overflow row and counted as lost, so
 * the byte totals stay whole.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "flowtel_common.bpf.h"
#include "flows.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flows_key);
	__type(value, struct flows_value);
} flows_by_endpoint SEC(".maps");

/* Index = direction: traffic of flows that did not fit in flows_by_endpoint. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, struct flows_value);
} flows_overflow SEC(".maps");

static __always_inline void account(struct __sk_buff *skb, __u8 direction)
{
	struct flows_key key = { .direction = direction };
	__u64 packets = skb->gso_segs ? skb->gso_segs : 1;

	key.endpoint.cgroup_id = bpf_skb_cgroup_id(skb);
	if (flowtel_flow_granularity) {
		struct bpf_sock *sk = skb->sk;

		key.endpoint.family = skb->family;
		if (skb->family == AF_INET) {
			__u32 remote = skb->remote_ip4;

			__builtin_memset(key.endpoint.peer_addr, 0, 10);
			key.endpoint.peer_addr[10] = key.endpoint.peer_addr[11] = 0xff;
			__builtin_memcpy(&key.endpoint.peer_addr[12], &remote, 4);
		} else {
			__u32 remote[4] = { skb->remote_ip6[0], skb->remote_ip6[1], skb->remote_ip6[2], skb->remote_ip6[3] };

			__builtin_memcpy(key.endpoint.peer_addr, remote, 16);
		}
		/* remote_port holds the big-endian port in its upper 16 bits (little-endian hosts). */
		key.endpoint.server_port = flowtel_server_port(skb->local_port, bpf_ntohs(skb->remote_port >> 16));
		if (sk) {
			sk = bpf_sk_fullsock(sk);
			if (sk)
				key.endpoint.protocol = sk->protocol;
		}
	}

	struct flows_value *value = bpf_map_lookup_elem(&flows_by_endpoint, &key);

	if (!value) {
		struct flows_value zero = {};

		bpf_map_update_elem(&flows_by_endpoint, &key, &zero, BPF_NOEXIST);
		value = bpf_map_lookup_elem(&flows_by_endpoint, &key);
	}
	if (!value) {
		__u32 index = direction;

		flowtel_count_loss(FLOWTEL_LOSS_MAP_FULL);
		value = bpf_map_lookup_elem(&flows_overflow, &index);
		if (!value)
			return;
	}
	value->bytes += skb->len;
	value->packets += packets;
}

SEC("cgroup_skb/ingress")
int flows_ingress(struct __sk_buff *skb)
{
	account(skb, FLOWTEL_DIRECTION_RECEIVE);
	return 1;
}

SEC("cgroup_skb/egress")
int flows_egress(struct __sk_buff *skb)
{
	account(skb, FLOWTEL_DIRECTION_TRANSMIT);
	return 1;
}
