// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * tcp-connections: the TCP connection life cycle from inet_sock_set_state.
 *   client: CLOSE -> SYN_SENT (connect) -> ESTABLISHED, or -> CLOSE (failed, sk_err says why)
 *   server: SYN_RECV -> ESTABLISHED (the child socket; its first RTT sample
 *           is the SYN-ACK round trip, our server-side handshake time)
 *   any:    ESTABLISHED ... -> CLOSE (duration, bytes)
 * Every transition also moves one socket from one state count to another,
 * so user space gets live connections by state without walking sockets.
 * All counts of an endpoint share one row (struct tcp_connections_counts).
 *
 * Two programs on the one hook, of which the agent loads the one this kernel
 * can run: inet_sock_set_state reads TCP fields through the bpf_rdonly_cast
 * kfunc (6.2+), inet_sock_set_state__skc_cast through the bpf_skc_to_tcp_sock
 * helper (5.9+).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "flowtel_common.bpf.h"
#include "tcp_connections.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * Shared by all CPUs and added to atomically: a row is 224 bytes, which a
 * per-CPU map would hold once per possible CPU (16,384 rows: 235 MiB at 64
 * CPUs). Not preallocated either: rows are created once per endpoint (per
 * peer at flow granularity), so memory follows the rows in use.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, struct tcp_connections_key);
	__type(value, struct tcp_connections_counts);
} tcp_connections_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct tcp_connections_failure_key);
	__type(value, __u64);
} tcp_connections_failures SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct tcp_connections_hist_key);
	__type(value, struct flowtel_histogram);
} tcp_connections_handshake SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct tcp_connections_hist_key);
	__type(value, struct flowtel_histogram);
} tcp_connections_duration SEC(".maps");

/* Kernel-side only: user space never reads tracked_sockets. */
struct tcp_connections_socket {
	__u64 connect_ns;	/* SYN_SENT entered: a client; 0: a server */
	__u64 established_ns;	/* ESTABLISHED entered; 0 before */
};

/*
 * What each socket needs remembered between transitions (struct
 * tcp_connections_socket), keyed by the socket's kernel address, from
 * SYN_SENT (client) or ESTABLISHED (server) to CLOSE, which deletes it.
 *
 * Not socket storage: creating a socket's first storage element also
 * allocates its storage container, and under connection churn that cost about
 * 1.3 us per socket, two sockets per connection. Inserting into a
 * preallocated hash takes an element off a per-CPU free list: 390 ns per
 * transition on average became 300 (160 with no per-socket state at all;
 * docs/performance.md). The address is a safe key because every TCP socket
 * that reaches SYN_SENT or ESTABLISHED passes CLOSE before the kernel frees
 * it (inet_csk_destroy_sock warns otherwise), and CLOSE deletes its entry; a
 * socket later allocated at the same address starts with a fresh one.
 *
 * Sized by the agent (maxTrackedSockets). A socket that finds it full is
 * counted as map_full, and its handshake, close and duration go uncounted.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct tcp_connections_socket);
} tracked_sockets SEC(".maps");

struct tcp_connect_failed_event flowtel_btf_tcp_connect_failed_event __attribute__((unused));
enum tcp_connection_role tcp_connections_anchor __attribute__((unused));

static __always_inline void failure_add(const struct flowtel_endpoint_key *endpoint, __s32 error)
{
	struct tcp_connections_failure_key key = { .endpoint = *endpoint, .error = error };

	flowtel_counter_add(&tcp_connections_failures, &key, 1);
}

static __always_inline void hist_add(void *map, const struct flowtel_endpoint_key *endpoint, __u8 role, __u64 value_us)
{
	struct tcp_connections_hist_key key = { .endpoint = *endpoint, .role = role };
	struct flowtel_histogram *h = flowtel_hist_row(map, &key);

	if (h)
		flowtel_hist_add(h, value_us);
}

/*
 * The socket's address as a map key. Keeping a pointer as data is allowed to
 * programs with CAP_PERFMON, which loading a tracing program needs anyway.
 */
static __always_inline __u64 socket_key(struct sock *sk)
{
	return (__u64)sk;
}

/* connect_ns for a client (from SYN_SENT), established_ns for a server (from ESTABLISHED). */
static __always_inline void socket_track(struct sock *sk, __u64 connect_ns, __u64 established_ns)
{
	__u64 key = socket_key(sk);
	struct tcp_connections_socket value = {
		.connect_ns = connect_ns,
		.established_ns = established_ns,
	};

	if (bpf_map_update_elem(&tracked_sockets, &key, &value, BPF_ANY))
		flowtel_count_loss(FLOWTEL_LOSS_MAP_FULL);
}

static __always_inline struct tcp_connections_socket *socket_find(struct sock *sk)
{
	__u64 key = socket_key(sk);

	return bpf_map_lookup_elem(&tracked_sockets, &key);
}

static __always_inline void socket_forget(struct sock *sk)
{
	__u64 key = socket_key(sk);

	bpf_map_delete_elem(&tracked_sockets, &key);
}

static __always_inline void emit_failure(struct sock *sk, const struct flowtel_endpoint_key *endpoint, __s32 error,
					 __u64 duration_ns, __u64 now)
{
	struct tcp_connect_failed_event *e = flowtel_event_reserve(FLOWTEL_EVENT_TCP_CONNECT_FAILED, sizeof(*e), now);

	if (!e)
		return;
	flowtel_fill_tuple(&e->tuple, sk);
	e->cgroup_id = endpoint->cgroup_id;
	e->netns_ino = endpoint->netns_ino;
	e->error = error;
	e->duration_ns = duration_ns;
	flowtel_event_submit(e, sizeof(*e));
}

/* A client handshake that ended in CLOSE: counted by errno, and an event. connect_ns 0: not known. */
static __always_inline void record_failure(struct sock *sk, const struct flowtel_endpoint_key *endpoint,
					   __u64 connect_ns, __u64 now)
{
	__s32 error = sk->sk_err;

	failure_add(endpoint, error);
	emit_failure(sk, endpoint, error, connect_ns ? now - connect_ns : 0, now);
}

static __always_inline int on_state_change(struct sock *sk, int oldstate, int newstate, bool kfunc)
{
	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;

	struct tcp_connections_key row = {};
	struct flowtel_endpoint_key *endpoint = &row.endpoint;
	__u64 now;

	flowtel_endpoint_of_sock(endpoint, sk);
	/* Pod rows need no tuple: a failure event reads its own. */
	if (flowtel_flow_granularity) {
		struct flowtel_tuple tuple = {};
		int role = flowtel_role_of_transition(oldstate, newstate);

		/* Transitions after the handshake: the role the socket was tracked with (none if it never was). */
		if (role == FLOWTEL_ROLE_UNKNOWN) {
			struct tcp_connections_socket *st = socket_find(sk);

			if (st)
				role = st->connect_ns ? FLOWTEL_ROLE_CLIENT : FLOWTEL_ROLE_SERVER;
		}
		flowtel_fill_tuple(&tuple, sk);
		flowtel_endpoint_set_peer_role(endpoint, &tuple, role);
	}

	static const struct tcp_connections_counts zero;
	struct tcp_connections_counts *counts = flowtel_row(&tcp_connections_counts, &row, &zero);

	/*
	 * Live sockets by state: leave the old state, enter the new one. CLOSE
	 * is not counted, nor is SYN_RECV: an accepted connection's child socket
	 * is a clone of its listener and reports LISTEN -> SYN_RECV while it
	 * still has the listener's addresses (on some kernels), so its +1 and
	 * its later -1 would land on different flow rows. It never was a
	 * listener either, so nothing leaves LISTEN.
	 * A full map (counted by flowtel_row) leaves counts NULL; failures,
	 * histograms and events below still go on.
	 */
	if (counts && oldstate != TCP_CLOSE && oldstate != TCP_SYN_RECV && !(oldstate == TCP_LISTEN && newstate == TCP_SYN_RECV))
		flowtel_add(counts->sockets[oldstate & (TCP_CONNECTIONS_STATES - 1)], -1);
	if (counts && newstate != TCP_CLOSE && newstate != TCP_SYN_RECV)
		flowtel_add(counts->sockets[newstate & (TCP_CONNECTIONS_STATES - 1)], 1);

	/* Transitions below the state counts only: no clock read. */
	if (newstate != TCP_SYN_SENT && newstate != TCP_ESTABLISHED && newstate != TCP_CLOSE)
		return 0;
	now = bpf_ktime_get_ns();
	if (newstate == TCP_SYN_SENT) {
		socket_track(sk, now, 0);
		return 0;
	}
	if (oldstate == TCP_SYN_SENT && newstate == TCP_ESTABLISHED) {
		struct tcp_connections_socket *st = socket_find(sk);

		if (counts)
			flowtel_add(counts->opened[TCP_ROLE_CLIENT], 1);
		if (st) {
			if (st->connect_ns)
				hist_add(&tcp_connections_handshake, endpoint, TCP_ROLE_CLIENT, (now - st->connect_ns) / 1000);
			st->established_ns = now;
		}
		return 0;
	}
	if (oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED) {
		struct tcp_sock *tp = flowtel_tcp_sock(sk, kfunc);
		__u32 srtt_us = tp ? tp->srtt_us >> 3 : 0;

		if (counts)
			flowtel_add(counts->opened[TCP_ROLE_SERVER], 1);
		hist_add(&tcp_connections_handshake, endpoint, TCP_ROLE_SERVER, srtt_us);
		socket_track(sk, 0, now);
		return 0;
	}
	if (newstate != TCP_CLOSE)
		return 0;

	/* A CLOSE of a socket not tracked (a listener, a child that never got established) finds nothing. */
	struct tcp_connections_socket *st = socket_find(sk);

	if (oldstate == TCP_SYN_SENT) {
		record_failure(sk, endpoint, st ? st->connect_ns : 0, now);
	} else if (st && st->established_ns) {
		struct tcp_sock *tp = flowtel_tcp_sock(sk, kfunc);
		__u8 role = st->connect_ns ? TCP_ROLE_CLIENT : TCP_ROLE_SERVER;

		if (counts) {
			flowtel_add(counts->closed[role], 1);
			if (tp) {
				flowtel_add(counts->bytes_sent[role], tp->bytes_acked);
				flowtel_add(counts->bytes_received[role], tp->bytes_received);
			}
		}
		hist_add(&tcp_connections_duration, endpoint, role, (now - st->established_ns) / 1000);
	}
	/* Last: once deleted, the element may be handed to another socket on another CPU. */
	if (st)
		socket_forget(sk);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(inet_sock_set_state, struct sock *sk, int oldstate, int newstate)
{
	return on_state_change(sk, oldstate, newstate, FLOWTEL_CAST_KFUNC);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(inet_sock_set_state__skc_cast, struct sock *sk, int oldstate, int newstate)
{
	return on_state_change(sk, oldstate, newstate, FLOWTEL_CAST_HELPER);
}
