/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Maps and helpers included by every probe-group object. The ring buffer and
 * the loss counters are declared in each object, but the agent makes them one:
 * the first loaded object creates them and the others reuse its fds.
 */
#ifndef FLOWTEL_COMMON_BPF_H
#define FLOWTEL_COMMON_BPF_H

/* Everything these helpers use, so that a program needs only vmlinux.h before this header. */
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "flowtel.h"

#define AF_INET 2
#define AF_INET6 10
/* errno: what a hash map's update returns when the map is full */
#define FLOWTEL_E2BIG 7

/* Sized by the agent before load (resize); a power of two of pages. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} flowtel_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FLOWTEL_LOSS_REASON_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} flowtel_losses SEC(".maps");

/* Per-CPU fixed one-second window for event rate limiting. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flowtel_rate_window);
} flowtel_rate SEC(".maps");

/*
 * Enums used only as constants leave no BTF behind; this unused global keeps
 * them in every object so user space reads their values instead of copying them.
 */
struct flowtel_btf_anchor {
	struct flowtel_event_header header;	/* even objects that emit no events: the runtime reads it from any */
	enum flowtel_event_kind kind;
	enum flowtel_loss_reason loss_reason;
	enum flowtel_direction direction;
	struct flowtel_histogram histogram;
} flowtel_btf_anchor __attribute__((unused));

/* 1: rows carry the peer (flow granularity); 0: rows are per pod. */
const volatile __u8 flowtel_flow_granularity = 0;
/* net.ipv4.ip_local_port_range, to tell the server port from the client's. */
const volatile __u16 flowtel_ephemeral_low = 32768;
const volatile __u16 flowtel_ephemeral_high = 60999;

/* Events per second per CPU; 0 disables events (counters still run). */
const volatile __u64 flowtel_events_per_cpu_per_sec = 100;

/*
 * Wake the consumer once per this many bytes waiting in the ring (0: the
 * kernel's default, a wakeup whenever the consumer has caught up, which under
 * a flood is one wakeup, and one context switch, per record). Records below
 * the threshold wait for the consumer's poll timeout.
 */
const volatile __u64 flowtel_ringbuf_wakeup_bytes = 0;

/*
 * Adds to a counter that another program may be adding to at the same time:
 * on this CPU, one that interrupts it (a softirq's program while a
 * process-context one holds the same per-CPU row), or on another CPU, for
 * the rows of a map shared by all CPUs. A plain load-add-store would lose
 * the other add. The locked add costs a few ns on a line this CPU owns.
 */
#define flowtel_add(counter, delta) __sync_fetch_and_add(&(counter), (delta))

static __always_inline void flowtel_count_loss(__u32 reason)
{
	__u64 *slot = bpf_map_lookup_elem(&flowtel_losses, &reason);

	if (slot)
		flowtel_add(*slot, 1);
}

/*
 * True when this CPU may emit one more event in the current second. The clock
 * is read at most once per tick (the first event of a tick checks whether the
 * second is over), so a window ends at most a tick late, and a flood of events
 * over the limit (resets, drops) costs a jiffies read per suppressed event, not
 * a clocksource read. (bpf_ktime_get_coarse_ns would do the same, but tracing
 * programs may not call it.)
 */
static __always_inline bool flowtel_event_allowed(void)
{
	__u32 zero = 0;
	struct flowtel_rate_window *w = bpf_map_lookup_elem(&flowtel_rate, &zero);
	__u64 tick;

	if (!w)
		return false;
	tick = bpf_jiffies64();
	if (tick != w->checked_jiffies) {
		__u64 now = bpf_ktime_get_ns();

		w->checked_jiffies = tick;
		if (now - w->window_start_ns >= 1000000000ULL) {
			w->window_start_ns = now;
			w->emitted = 0;
		}
	}
	if (w->emitted >= flowtel_events_per_cpu_per_sec) {
		flowtel_count_loss(FLOWTEL_LOSS_RATE_LIMITED);
		return false;
	}
	flowtel_add(w->emitted, 1);
	return true;
}

static __always_inline void flowtel_fill_header(struct flowtel_event_header *h, __u16 kind,
						__u16 size, __u64 now)
{
	h->kind = kind;
	h->size = size;
	h->cpu = bpf_get_smp_processor_id();
	h->timestamp_ns = now;
}

/*
 * Reserves an event of `size` bytes with its header filled, or returns NULL:
 * over the rate limit (counted as rate-limited) or ring full (counted as lost).
 * `now` is the event's bpf_ktime_get_ns() time if the caller has read it
 * already, else 0: then it is read only for an event that is allowed.
 */
static __always_inline void *flowtel_event_reserve(__u16 kind, __u16 size, __u64 now)
{
	struct flowtel_event_header *h;

	if (!flowtel_event_allowed())
		return NULL;
	if (!now)
		now = bpf_ktime_get_ns();
	h = bpf_ringbuf_reserve(&flowtel_events, size, 0);
	if (!h) {
		flowtel_count_loss(FLOWTEL_LOSS_RINGBUF_FULL);
		return NULL;
	}
	flowtel_fill_header(h, kind, size, now);
	return h;
}

/*
 * Submits a reserved event. With flowtel_ringbuf_wakeup_bytes set, the
 * consumer is woken when the data waiting crosses a multiple of it: once per
 * that many bytes, whether the consumer keeps up or is behind (a record that
 * misses its crossing because another CPU's record moved the count is caught
 * at the next one, or by the poll timeout).
 */
static __always_inline void flowtel_event_submit(void *event, __u16 size)
{
	__u64 every = flowtel_ringbuf_wakeup_bytes;
	__u64 waiting, before;

	if (!every) {
		bpf_ringbuf_submit(event, 0);
		return;
	}
	waiting = bpf_ringbuf_query(&flowtel_events, BPF_RB_AVAIL_DATA);
	/* The ring counts each record with its 8-byte header, rounded up to 8. */
	before = waiting - (((__u64)size + 8 + 7) & ~7ULL);
	if (waiting / every != before / every && waiting >= every)
		bpf_ringbuf_submit(event, BPF_RB_FORCE_WAKEUP);
	else
		bpf_ringbuf_submit(event, BPF_RB_NO_WAKEUP);
}

/*
 * The kernel's bpf_rdonly_cast kfunc (Linux 6.2+; the installed libbpf's
 * bpf_helpers.h does not declare it): `obj` as a read-only pointer to the
 * kernel type of BTF id `btf_id`. The verifier turns it into a plain move,
 * where bpf_skc_to_tcp_sock (5.9+) is a helper call that also checks the
 * socket's kind. Weak, so that an object whose programs using it are not
 * loaded (kernels before 6.2) still loads: the agent picks, per hook, the
 * program variant this kernel can run (src/bpf/hooks.ts).
 */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

/*
 * A struct sock known to be a full TCP socket, as a struct tcp_sock to read
 * fields of. `kfunc` is a constant at every call site: each program variant is
 * compiled with one of the two casts only, so a variant for kernels without
 * the kfunc does not call it. NULL only from the helper, for a socket that is
 * not a full TCP socket.
 */
static __always_inline struct tcp_sock *flowtel_tcp_sock(struct sock *sk, bool kfunc)
{
	if (kfunc)
		return (struct tcp_sock *)bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct tcp_sock));
	return bpf_skc_to_tcp_sock(sk);
}

/* The two casts, as the constant argument of program bodies shared by variants. */
#define FLOWTEL_CAST_KFUNC true
#define FLOWTEL_CAST_HELPER false

/*
 * Field reads below are plain loads, not bpf_probe_read: every caller is a
 * tp_btf program whose socket/skb arguments are BTF-typed, so the verifier
 * checks the loads and vmlinux.h's preserve_access_index keeps them CO-RE.
 * A helper call per field cost hundreds of ns per event.
 */

/* cgroup v2 id of the cgroup that created a full socket; 0 if unknown. */
static __always_inline __u64 flowtel_socket_cgroup_id(struct sock *sk)
{
	struct cgroup *cgroup = sk->sk_cgrp_data.cgroup;

	return cgroup ? cgroup->kn->id : 0;
}

/* Timewait and request sockets are not full sockets: no cgroup data. */
static __always_inline bool flowtel_sk_is_full(const struct sock *sk)
{
	__u8 state = sk->__sk_common.skc_state;

	return state != TCP_TIME_WAIT && state != TCP_NEW_SYN_RECV;
}

/* `sk` may be a TIME_WAIT or request socket (resets, drops): only its sock_common is read then. */
static __always_inline void flowtel_fill_tuple(struct flowtel_tuple *t, struct sock *sk)
{
	__u16 family = sk->__sk_common.skc_family;

	t->family = family;
	if (flowtel_sk_is_full(sk)) {
		t->protocol = sk->sk_protocol;
		/*
		 * inet_sport, not skc_num: when a socket moves to CLOSE the kernel
		 * releases its port (skc_num = 0) before inet_sock_set_state fires.
		 */
		t->sport = bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
		if (t->sport == 0)
			t->sport = sk->__sk_common.skc_num;
	} else {
		/*
		 * sk_protocol and inet_sport lie past the end of a TIME_WAIT or
		 * request socket, in whatever the slab holds next. Both kinds are
		 * TCP, and their skc_num is the local port (a request socket's is
		 * its listener's).
		 */
		t->protocol = IPPROTO_TCP;
		t->sport = sk->__sk_common.skc_num;
	}
	t->dport = bpf_ntohs(sk->__sk_common.skc_dport);
	if (family == AF_INET) {
		__u32 s = sk->__sk_common.skc_rcv_saddr;
		__u32 d = sk->__sk_common.skc_daddr;

		__builtin_memset(t->saddr, 0, 10);
		__builtin_memset(t->daddr, 0, 10);
		t->saddr[10] = t->saddr[11] = 0xff;
		t->daddr[10] = t->daddr[11] = 0xff;
		__builtin_memcpy(&t->saddr[12], &s, 4);
		__builtin_memcpy(&t->daddr[12], &d, 4);
	} else {
		BPF_CORE_READ_INTO(&t->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&t->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
}

static __always_inline __u32 flowtel_sock_netns(const struct sock *sk)
{
	return sk->__sk_common.skc_net.net->ns.inum;
}

static __always_inline __u32 flowtel_skb_netns(const struct sk_buff *skb)
{
	struct net_device *dev = skb->dev;

	return dev ? dev->nd_net.net->ns.inum : 0;
}

/* The server side of a connection: the port outside the ephemeral range. */
static __always_inline __u16 flowtel_server_port(__u16 local, __u16 remote)
{
	/* 0 = not known (yet): a connecting socket has no local port before its SYN. */
	if (local == 0 || remote == 0)
		return local | remote;
	bool local_ephemeral = local >= flowtel_ephemeral_low && local <= flowtel_ephemeral_high;
	bool remote_ephemeral = remote >= flowtel_ephemeral_low && remote <= flowtel_ephemeral_high;

	if (local_ephemeral && !remote_ephemeral)
		return remote;
	if (remote_ephemeral && !local_ephemeral)
		return local;
	return local < remote ? local : remote;
}

/* Local endpoint of a socket: its cgroup if it is a full socket, and its netns. */
static __always_inline void flowtel_endpoint_of_sock(struct flowtel_endpoint_key *k, const struct sock *sk)
{
	k->netns_ino = flowtel_sock_netns(sk);
	if (flowtel_sk_is_full(sk))
		k->cgroup_id = flowtel_socket_cgroup_id((struct sock *)sk);
}

/* At flow granularity, the peer of tuple `t` (saddr local, daddr remote). */
static __always_inline void flowtel_endpoint_set_peer(struct flowtel_endpoint_key *k, const struct flowtel_tuple *t)
{
	if (!flowtel_flow_granularity)
		return;
	__builtin_memcpy(k->peer_addr, t->daddr, 16);
	k->protocol = t->protocol;
	k->family = t->family;
	k->server_port = flowtel_server_port(t->sport, t->dport);
}

/* Which end of a TCP connection a socket is, where the program knows it (values of enum tcp_connection_role). */
#define FLOWTEL_ROLE_UNKNOWN 0
#define FLOWTEL_ROLE_CLIENT 1
#define FLOWTEL_ROLE_SERVER 2

/*
 * The role a transition of inet_sock_set_state shows: a client connects
 * (SYN_SENT), a server's socket is born of a SYN (SYN_RECV).
 */
static __always_inline int flowtel_role_of_transition(int oldstate, int newstate)
{
	if (oldstate == TCP_SYN_SENT || newstate == TCP_SYN_SENT)
		return FLOWTEL_ROLE_CLIENT;
	if (oldstate == TCP_SYN_RECV || newstate == TCP_SYN_RECV)
		return FLOWTEL_ROLE_SERVER;
	return FLOWTEL_ROLE_UNKNOWN;
}

/*
 * flowtel_endpoint_set_peer, with the server port taken from the connection's
 * role when known: the peer's port for a client, its own for a server. The
 * port rule guesses wrong when both ports are in the ephemeral range (gRPC on
 * 50051, a pod with its own port range).
 */
static __always_inline void flowtel_endpoint_set_peer_role(struct flowtel_endpoint_key *k, const struct flowtel_tuple *t, int role)
{
	if (!flowtel_flow_granularity)
		return;
	flowtel_endpoint_set_peer(k, t);
	if (role == FLOWTEL_ROLE_CLIENT && t->dport)
		k->server_port = t->dport;
	else if (role == FLOWTEL_ROLE_SERVER && t->sport)
		k->server_port = t->sport;
}

/*
 * Fills `t` from the IP and TCP/UDP headers of a packet. `t` is written in
 * packet order (saddr = source). Returns false when the headers do not parse.
 */
static __always_inline bool flowtel_tuple_of_skb(struct flowtel_tuple *t, const struct sk_buff *skb)
{
	unsigned char *head = skb->head;
	__u16 network = skb->network_header;
	__u16 transport = skb->transport_header;
	__u8 version_ihl;
	__u32 l4 = 0;

	if (network == (__u16)~0U || bpf_probe_read_kernel(&version_ihl, 1, head + network))
		return false;
	if ((version_ihl >> 4) == 4) {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + network))
			return false;
		__builtin_memset(t->saddr, 0, 10);
		__builtin_memset(t->daddr, 0, 10);
		t->saddr[10] = t->saddr[11] = 0xff;
		t->daddr[10] = t->daddr[11] = 0xff;
		__builtin_memcpy(&t->saddr[12], &ip.saddr, 4);
		__builtin_memcpy(&t->daddr[12], &ip.daddr, 4);
		t->family = AF_INET;
		t->protocol = ip.protocol;
		l4 = network + (version_ihl & 0xf) * 4;
	} else if ((version_ihl >> 4) == 6) {
		struct ipv6hdr ip6;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + network))
			return false;
		__builtin_memcpy(t->saddr, &ip6.saddr, 16);
		__builtin_memcpy(t->daddr, &ip6.daddr, 16);
		t->family = AF_INET6;
		t->protocol = ip6.nexthdr;
		l4 = network + sizeof(ip6);
	} else {
		return false;
	}
	if (transport != (__u16)~0U && transport > network)
		l4 = transport;
	if (t->protocol == IPPROTO_TCP || t->protocol == IPPROTO_UDP) {
		__be16 ports[2];

		if (bpf_probe_read_kernel(ports, sizeof(ports), head + l4) == 0) {
			t->sport = bpf_ntohs(ports[0]);
			t->dport = bpf_ntohs(ports[1]);
		}
	}
	return true;
}

/* Quarter-octave bucket of v: 4 buckets per power of two, lower bound (4 + b%4) * 2^(b/4 - 2). */
static __always_inline __u32 flowtel_hist_bucket(__u64 v)
{
	__u64 x = v;
	__u32 msb = 0;
	__u32 sub, bucket;

	if (v == 0)
		return 0;
	if (x >> 32) { x >>= 32; msb += 32; }
	if (x >> 16) { x >>= 16; msb += 16; }
	if (x >> 8) { x >>= 8; msb += 8; }
	if (x >> 4) { x >>= 4; msb += 4; }
	if (x >> 2) { x >>= 2; msb += 2; }
	if (x >> 1) { msb += 1; }
	sub = msb >= 2 ? (v >> (msb - 2)) & 3 : (v << (2 - msb)) & 3;
	bucket = msb * 4 + sub;
	return bucket < FLOWTEL_HIST_BUCKETS ? bucket : FLOWTEL_HIST_BUCKETS - 1;
}

/* Adds v to a histogram shared by all CPUs (atomic: rows are not per-CPU to keep them small). */
static __always_inline void flowtel_hist_add(struct flowtel_histogram *h, __u64 v)
{
	__u32 bucket = flowtel_hist_bucket(v);

	__sync_fetch_and_add(&h->count, 1);
	__sync_fetch_and_add(&h->sum, v);
	/*
	 * Check the very register the access uses: clang may keep the bucket in
	 * two registers and bound only one, and verifiers before 6.2 or so do not
	 * carry the bound across (6.1 refused the access at 2000 of 1296 bytes).
	 */
	barrier_var(bucket);
	if (bucket < FLOWTEL_HIST_BUCKETS)
		__sync_fetch_and_add(&h->buckets[bucket], 1);
}

/*
 * The map row of `key`, created from `zero` when absent (another CPU may
 * create it at the same time: BPF_NOEXIST, then look up again). NULL, and
 * counted as map_full, when the map has no room.
 */
static __always_inline void *flowtel_row(void *map, const void *key, const void *zero)
{
	void *row = bpf_map_lookup_elem(map, key);

	if (row)
		return row;
	bpf_map_update_elem(map, key, zero, BPF_NOEXIST);
	row = bpf_map_lookup_elem(map, key);
	if (!row)
		flowtel_count_loss(FLOWTEL_LOSS_MAP_FULL);
	return row;
}

static __always_inline struct flowtel_histogram *flowtel_hist_row(void *map, const void *key)
{
	static const struct flowtel_histogram empty = {};

	return flowtel_row(map, key, &empty);
}

/* Adds `delta` to a u64 per-CPU counter row, creating it when absent. */
static __always_inline void flowtel_counter_add(void *map, const void *key, __u64 delta)
{
	static const __u64 zero;
	__u64 *value = flowtel_row(map, key, &zero);

	if (value)
		flowtel_add(*value, delta);
}

#endif
