// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * flows: bytes and packets per local endpoint and direction from cgroup_skb
 * programs attached at the cgroup v2 root (they see every socket's traffic;
 * the socket's cgroup is bpf_skb_cgroup_id). At flow granularity rows also
 * carry the peer address, server port and protocol. A flow that finds the
 * map full is counted as lost and its traffic goes to the pod's overflow row
 * (no peer), or, if even that map is full, to a node-wide row: pod and node
 * totals stay whole whatever the number of flows.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "flowtel_common.bpf.h"
#include "flows.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * Per CPU: every packet adds to a row, and CPUs sending or receiving for one
 * pod would otherwise contend for it. So its size counts once per possible
 * CPU (16,384 rows: 256 KiB per CPU), and the agent sizes it (maxRows).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct flows_key);
	__type(value, struct flows_value);
} flows_by_endpoint SEC(".maps");

/* Per local endpoint and direction (no peer): traffic of flows that did not fit in flows_by_endpoint. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct flows_key);
	__type(value, struct flows_value);
} flows_overflow SEC(".maps");

/* Index = direction: the last resort when flows_overflow is full too. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, struct flows_value);
} flows_overflow_node SEC(".maps");

/* The row of `key` in `map`, created when absent; NULL when the map is full. */
static __always_inline struct flows_value *flow_row(void *map, const struct flows_key *key)
{
	struct flows_value *value = bpf_map_lookup_elem(map, key);

	if (!value) {
		struct flows_value zero = {};

		bpf_map_update_elem(map, key, &zero, BPF_NOEXIST);
		value = bpf_map_lookup_elem(map, key);
	}
	return value;
}

/*
 * The peer of a packet. A connected socket's own peer comes first: it is the
 * address the application connected to (a service's ClusterIP before kube-
 * proxy's DNAT rewrites the packet). Unconnected sockets (UDP sendto) have
 * none, so then the packet's own headers (cgroup_skb data starts at the IP
 * header) tell.
 */
static __always_inline void flow_peer(struct __sk_buff *skb, __u8 direction, struct flowtel_endpoint_key *k)
{
	struct flowtel_tuple t = {};
	__u8 version_ihl;
	__u32 l4;

	if (skb->family == AF_INET && skb->remote_ip4 != 0) {
		__u32 local = skb->local_ip4, remote = skb->remote_ip4;
		struct bpf_sock *sk = skb->sk;

		t.saddr[10] = t.saddr[11] = t.daddr[10] = t.daddr[11] = 0xff;
		__builtin_memcpy(&t.saddr[12], &local, 4);
		__builtin_memcpy(&t.daddr[12], &remote, 4);
		t.family = AF_INET;
		t.sport = skb->local_port;
		/* remote_port holds the big-endian port in its upper 16 bits (little-endian hosts). */
		t.dport = bpf_ntohs(skb->remote_port >> 16);
		if (sk) {
			sk = bpf_sk_fullsock(sk);
			if (sk)
				t.protocol = sk->protocol;
		}
		flowtel_endpoint_set_peer(k, &t);
		return;
	}

	if (bpf_skb_load_bytes(skb, 0, &version_ihl, 1))
		return;
	if ((version_ihl >> 4) == 4) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return;
		t.saddr[10] = t.saddr[11] = t.daddr[10] = t.daddr[11] = 0xff;
		__builtin_memcpy(&t.saddr[12], &ip.saddr, 4);
		__builtin_memcpy(&t.daddr[12], &ip.daddr, 4);
		t.family = AF_INET;
		t.protocol = ip.protocol;
		l4 = (version_ihl & 0xf) * 4;
	} else if ((version_ihl >> 4) == 6) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return;
		__builtin_memcpy(t.saddr, &ip6.saddr, 16);
		__builtin_memcpy(t.daddr, &ip6.daddr, 16);
		t.family = AF_INET6;
		t.protocol = ip6.nexthdr;
		l4 = sizeof(ip6);
	} else {
		return;
	}
	if (t.protocol == IPPROTO_TCP || t.protocol == IPPROTO_UDP) {
		__be16 ports[2];

		if (bpf_skb_load_bytes(skb, l4, ports, sizeof(ports)) == 0) {
			t.sport = bpf_ntohs(ports[0]);
			t.dport = bpf_ntohs(ports[1]);
		}
	}
	/* flowtel_endpoint_set_peer wants the local side in saddr. */
	if (direction == FLOWTEL_DIRECTION_RECEIVE) {
		struct flowtel_tuple local = t;

		__builtin_memcpy(local.saddr, t.daddr, 16);
		__builtin_memcpy(local.daddr, t.saddr, 16);
		local.sport = t.dport;
		local.dport = t.sport;
		flowtel_endpoint_set_peer(k, &local);
	} else {
		flowtel_endpoint_set_peer(k, &t);
	}
}

static __always_inline void account(struct __sk_buff *skb, __u8 direction)
{
	struct flows_key key = { .direction = direction };
	__u64 packets = skb->gso_segs ? skb->gso_segs : 1;

	key.endpoint.cgroup_id = bpf_skb_cgroup_id(skb);
	if (flowtel_flow_granularity)
		flow_peer(skb, direction, &key.endpoint);

	struct flows_value *value = flow_row(&flows_by_endpoint, &key);

	if (!value) {
		struct flows_key pod = { .endpoint.cgroup_id = key.endpoint.cgroup_id, .direction = direction };
		__u32 index = direction;

		flowtel_count_loss(FLOWTEL_LOSS_MAP_FULL);
		value = flow_row(&flows_overflow, &pod);
		if (!value)
			value = bpf_map_lookup_elem(&flows_overflow_node, &index);
		if (!value)
			return;
	}
	flowtel_add(value->bytes, skb->len);
	flowtel_add(value->packets, packets);
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
