// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * flows: bytes and packets per local endpoint and direction. At flow
 * granularity rows also carry the peer address, server port and protocol.
 *
 * TCP, where a program can walk a map (bpf_for_each_map_elem, 5.13+), comes
 * from each socket's own counters, with no program per packet:
 *   flows_track  (inet_sock_set_state) keeps each socket from ESTABLISHED to
 *                CLOSE in flows_sockets, with its row key, and adds what is
 *                left of its counters at CLOSE;
 *   flows_walk   (run by user space before each collection) adds to each row
 *                what its sockets counted since the previous walk;
 *   flows_adopt  (tcp_probe, attached only for a while after start) adopts
 *                the connections established before the agent.
 * A socket's bytes are tcp_sock.bytes_acked (sent and acknowledged) and
 * bytes_received (received in order): payload, each byte once however often
 * it was retransmitted, plus one for a FIN (the SYN is not counted); packets
 * are segs_out and segs_in. Each counter's new amount is claimed with a
 * compare-and-exchange of what was counted so far, so the walk and the close
 * never count the same bytes twice.
 *
 * Everything else, and TCP on kernels that cannot walk (5.10), is counted
 * per packet by cgroup_skb programs attached at the cgroup v2 root (they see
 * every socket's traffic; the socket's cgroup is bpf_skb_cgroup_id): IP packet
 * bytes. Where TCP comes from sockets, those programs count only other
 * protocols, and are attached only when the config asks (nonTcpPackets).
 *
 * A flow that finds the map full is counted as lost and its traffic goes to
 * the pod's overflow row (no peer), or, if even that map is full, to a
 * node-wide row: pod and node totals stay whole whatever the number of flows.
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

/* Adds to the row of `key`, or to the pod's overflow row, or to the node's, whichever has room first. */
static __always_inline void add_to_row(const struct flows_key *key, __u64 bytes, __u64 packets)
{
	struct flows_value *value = flow_row(&flows_by_endpoint, key);

	if (!value) {
		struct flows_key pod = { .endpoint.cgroup_id = key->endpoint.cgroup_id, .direction = key->direction };
		__u32 index = key->direction;

		flowtel_count_loss(FLOWTEL_LOSS_MAP_FULL);
		value = flow_row(&flows_overflow, &pod);
		if (!value)
			value = bpf_map_lookup_elem(&flows_overflow_node, &index);
		if (!value)
			return;
	}
	flowtel_add(value->bytes, bytes);
	flowtel_add(value->packets, packets);
}

static __always_inline void account(struct __sk_buff *skb, __u8 direction)
{
	struct flows_key key = { .direction = direction };
	__u64 packets = skb->gso_segs ? skb->gso_segs : 1;

	key.endpoint.cgroup_id = bpf_skb_cgroup_id(skb);
	if (flowtel_flow_granularity)
		flow_peer(skb, direction, &key.endpoint);
	add_to_row(&key, skb->len, packets);
}

/* The packet's transport protocol from its IP header (cgroup_skb data starts there); 0 if unreadable. */
static __always_inline __u8 packet_protocol(struct __sk_buff *skb)
{
	__u8 protocol = 0;

	if (skb->protocol == bpf_htons(0x0800))
		bpf_skb_load_bytes(skb, offsetof(struct iphdr, protocol), &protocol, 1);
	else if (skb->protocol == bpf_htons(0x86DD))
		bpf_skb_load_bytes(skb, offsetof(struct ipv6hdr, nexthdr), &protocol, 1);
	return protocol;
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

/* Where TCP comes from the sockets: every other protocol, per packet. */
SEC("cgroup_skb/ingress")
int flows_ingress_other(struct __sk_buff *skb)
{
	if (packet_protocol(skb) != IPPROTO_TCP)
		account(skb, FLOWTEL_DIRECTION_RECEIVE);
	return 1;
}

SEC("cgroup_skb/egress")
int flows_egress_other(struct __sk_buff *skb)
{
	if (packet_protocol(skb) != IPPROTO_TCP)
		account(skb, FLOWTEL_DIRECTION_TRANSMIT);
	return 1;
}

/* ---- TCP from the sockets' own counters (kernels with bpf_for_each_map_elem) ---- */

enum flows_socket_counter {
	FLOWS_SENT_BYTES,
	FLOWS_RECEIVED_BYTES,
	FLOWS_SENT_SEGMENTS,
	FLOWS_RECEIVED_SEGMENTS,
	FLOWS_SOCKET_COUNTERS,
};

/* A tracked socket: kernel-side only. */
struct flows_socket {
	struct flowtel_endpoint_key endpoint;	/* its rows (both directions), fixed when tracking starts */
	__u64 counted[FLOWS_SOCKET_COUNTERS];	/* each counter's amount already added to the rows */
};

/*
 * Sockets from ESTABLISHED to CLOSE, keyed by their kernel address (see
 * tcp_rtt_sockets in tcp_rtt.bpf.c for why the address is safe and why the
 * map is not preallocated). Sized by the agent (maxTrackedSockets); a socket
 * that finds it full is counted as map_full and its traffic is not counted.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct flows_socket);
} flows_sockets SEC(".maps");

/* The socket's counters now (read through its address: the walk has no typed socket). */
static __always_inline void read_counters(__u64 address, __u64 now[FLOWS_SOCKET_COUNTERS])
{
	struct tcp_sock *tp = (struct tcp_sock *)address;

	now[FLOWS_SENT_BYTES] = BPF_CORE_READ(tp, bytes_acked);
	now[FLOWS_RECEIVED_BYTES] = BPF_CORE_READ(tp, bytes_received);
	now[FLOWS_SENT_SEGMENTS] = BPF_CORE_READ(tp, segs_out);
	now[FLOWS_RECEIVED_SEGMENTS] = BPF_CORE_READ(tp, segs_in);
}

/*
 * Starts counting a socket from its counters now: at ESTABLISHED that leaves
 * out the SYN (a client's bytes_acked is 1 by then); an adopted socket's
 * earlier traffic happened before the agent. `flags`: BPF_ANY for a socket
 * just established, BPF_NOEXIST to adopt one (whose role is not known).
 */
static __always_inline void track(struct sock *sk, __u64 flags, int role)
{
	__u64 address = (__u64)sk;
	struct flows_socket entry = {};

	flowtel_endpoint_of_sock(&entry.endpoint, sk);
	/* The rows of the per-packet programs, which know the cgroup only: the same key for the same pod. */
	entry.endpoint.netns_ino = 0;
	if (flowtel_flow_granularity) {
		struct flowtel_tuple tuple = {};

		flowtel_fill_tuple(&tuple, sk);
		flowtel_endpoint_set_peer_role(&entry.endpoint, &tuple, role);
	}
	read_counters(address, entry.counted);
	if (bpf_map_update_elem(&flows_sockets, &address, &entry, flags) == -FLOWTEL_E2BIG)
		flowtel_count_loss(FLOWTEL_LOSS_MAP_FULL);
}

/*
 * What counter `i` grew by since it was last counted, claimed so that no one
 * else adds it too. `wraps32`: the kernel's counter is 32 bits (segs_out and
 * segs_in wrap after 4G segments, an hour or two of a busy connection), so
 * growth is taken modulo 2^32; a counter that seems to have gone back (a read
 * of a socket closed meanwhile) is not growth either way.
 */
static __always_inline __u64 claim(struct flows_socket *entry, int i, __u64 now, bool wraps32)
{
	__u64 counted = entry->counted[i];
	__u64 grown = wraps32 ? (__u32)(now - counted) : now - counted;

	if (now == counted || (wraps32 ? grown >= (1ULL << 31) : now < counted))
		return 0;
	if (__sync_val_compare_and_swap(&entry->counted[i], counted, now) != counted)
		return 0;
	return grown;
}

/* Adds to the socket's rows what its counters grew by since they were last counted. */
static __always_inline void add_growth(__u64 address, struct flows_socket *entry)
{
	__u64 now[FLOWS_SOCKET_COUNTERS];
	struct flows_key key = { .endpoint = entry->endpoint };
	__u64 bytes, segments;

	read_counters(address, now);
	bytes = claim(entry, FLOWS_SENT_BYTES, now[FLOWS_SENT_BYTES], false);
	segments = claim(entry, FLOWS_SENT_SEGMENTS, now[FLOWS_SENT_SEGMENTS], true);
	if (bytes || segments) {
		key.direction = FLOWTEL_DIRECTION_TRANSMIT;
		add_to_row(&key, bytes, segments);
	}
	bytes = claim(entry, FLOWS_RECEIVED_BYTES, now[FLOWS_RECEIVED_BYTES], false);
	segments = claim(entry, FLOWS_RECEIVED_SEGMENTS, now[FLOWS_RECEIVED_SEGMENTS], true);
	if (bytes || segments) {
		key.direction = FLOWTEL_DIRECTION_RECEIVE;
		add_to_row(&key, bytes, segments);
	}
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(flows_track, struct sock *sk, int oldstate, int newstate)
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
	struct flows_socket *entry = bpf_map_lookup_elem(&flows_sockets, &address);

	if (!entry)
		return 0;
	add_growth(address, entry);
	bpf_map_delete_elem(&flows_sockets, &address);
	return 0;
}

/* tcp_probe fires only for established sockets, under the socket's lock, which their CLOSE takes too. */
SEC("tp_btf/tcp_probe")
int BPF_PROG(flows_adopt, struct sock *sk, const struct sk_buff *skb)
{
	__u64 address = (__u64)sk;

	if (!bpf_map_lookup_elem(&flows_sockets, &address))
		track(sk, BPF_NOEXIST, FLOWTEL_ROLE_UNKNOWN);
	return 0;
}

/*
 * One tracked socket. The walk runs under RCU and TCP sockets are freed
 * RCU-safely, so the memory read is a TCP socket; one that has closed since
 * had its counters claimed by its close, so a late read adds nothing (a claim
 * needs a counter above what was counted) unless the memory already holds a
 * new socket: the state check skips those still connecting.
 */
static long walk_one(struct bpf_map *map, __u64 *address, struct flows_socket *entry, __u32 *visited)
{
	struct sock *sk = (struct sock *)*address;
	__u8 state = BPF_CORE_READ(sk, __sk_common.skc_state);

	(*visited)++;
	if (state == TCP_CLOSE || state == TCP_LISTEN || state == TCP_SYN_SENT || state == TCP_SYN_RECV)
		return 0;
	add_growth(*address, entry);
	return 0;
}

/* Returns the sockets visited: how many the table holds. */
SEC("raw_tp")
int flows_walk(void *ctx)
{
	__u32 visited = 0;

	bpf_for_each_map_elem(&flows_sockets, walk_one, &visited, 0);
	return visited;
}
