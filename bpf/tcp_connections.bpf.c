// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * tcp-connections: the TCP connection life cycle from inet_sock_set_state.
 *   client: CLOSE -> SYN_SENT (connect) -> ESTABLISHED, or -> CLOSE (failed, sk_err says why)
 *   server: SYN_RECV -> ESTABLISHED (the child socket; its first RTT sample
 *           is the SYN-ACK round trip, our server-side handshake time)
 *   any:    ESTABLISHED ... -> CLOSE (duration, bytes)
 * Every transition also moves one socket from one state count to another,
 * so user space gets live connections by state without walking sockets.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "flowtel_common.bpf.h"
#include "tcp_connections.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct tcp_connections_key);
	__type(value, __s64);
} tcp_connections_stats SEC(".maps");

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

struct tcp_connect_failed_event flowtel_btf_tcp_connect_failed_event __attribute__((unused));
struct tcp_connections_anchor {
	enum tcp_connection_role role;
	enum tcp_connection_stat stat;
} tcp_connections_anchor __attribute__((unused));

static __always_inline void stat_add(const struct flowtel_endpoint_key *endpoint, __u8 stat, __u8 role, __u8 state,
				     __s32 error, __s64 delta)
{
	struct tcp_connections_key key = { .endpoint = *endpoint, .stat = stat, .role = role, .state = state, .error = error };

	flowtel_counter_add(&tcp_connections_stats, &key, (__u64)delta);
}

static __always_inline void hist_add(void *map, const struct flowtel_endpoint_key *endpoint, __u8 role, __u64 value_us)
{
	struct tcp_connections_hist_key key = { .endpoint = *endpoint, .role = role };
	struct flowtel_histogram *h = flowtel_hist_row(map, &key);

	if (h)
		flowtel_hist_add(h, value_us);
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

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(inet_sock_set_state, struct sock *sk, int oldstate, int newstate)
{
	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;

	struct flowtel_endpoint_key endpoint = {};
	__u64 now;

	flowtel_endpoint_of_sock(&endpoint, sk);
	/* Pod rows need no tuple: a failure event reads its own. */
	if (flowtel_flow_granularity) {
		struct flowtel_tuple tuple = {};

		flowtel_fill_tuple(&tuple, sk);
		flowtel_endpoint_set_peer(&endpoint, &tuple);
	}

	/*
	 * Live sockets by state: leave the old state, enter the new one (CLOSE is not counted).
	 * An accepted connection's child socket is a clone of its listener and reports
	 * LISTEN -> SYN_RECV: it never was a listener, so nothing leaves LISTEN.
	 */
	if (oldstate != TCP_CLOSE && !(oldstate == TCP_LISTEN && newstate == TCP_SYN_RECV))
		stat_add(&endpoint, TCP_STAT_STATE_DELTA, 0, oldstate, 0, -1);
	if (newstate != TCP_CLOSE)
		stat_add(&endpoint, TCP_STAT_STATE_DELTA, 0, newstate, 0, 1);

	/* Transitions below the state counts only: no clock read. */
	if (newstate != TCP_SYN_SENT && newstate != TCP_ESTABLISHED && newstate != TCP_CLOSE)
		return 0;
	now = bpf_ktime_get_ns();
	if (newstate == TCP_SYN_SENT) {
		struct flowtel_socket_state *st =
			bpf_sk_storage_get(&flowtel_sockets, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);

		if (st) {
			st->connect_ns = now;
			st->role = TCP_ROLE_CLIENT;
		}
		return 0;
	}
	if (oldstate == TCP_SYN_SENT && newstate == TCP_ESTABLISHED) {
		struct flowtel_socket_state *st = bpf_sk_storage_get(&flowtel_sockets, sk, 0, 0);

		stat_add(&endpoint, TCP_STAT_OPENED, TCP_ROLE_CLIENT, 0, 0, 1);
		if (st) {
			if (st->connect_ns)
				hist_add(&tcp_connections_handshake, &endpoint, TCP_ROLE_CLIENT, (now - st->connect_ns) / 1000);
			st->established_ns = now;
		}
		return 0;
	}
	if (oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED) {
		struct flowtel_socket_state *st =
			bpf_sk_storage_get(&flowtel_sockets, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		struct tcp_sock *tp = (struct tcp_sock *)sk;
		__u32 srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;

		stat_add(&endpoint, TCP_STAT_OPENED, TCP_ROLE_SERVER, 0, 0, 1);
		hist_add(&tcp_connections_handshake, &endpoint, TCP_ROLE_SERVER, srtt_us);
		if (st) {
			st->established_ns = now;
			st->role = TCP_ROLE_SERVER;
		}
		return 0;
	}
	if (newstate != TCP_CLOSE)
		return 0;

	struct flowtel_socket_state *st = bpf_sk_storage_get(&flowtel_sockets, sk, 0, 0);

	if (oldstate == TCP_SYN_SENT) {
		__s32 error = sk->sk_err;

		stat_add(&endpoint, TCP_STAT_FAILED, TCP_ROLE_CLIENT, 0, error, 1);
		emit_failure(sk, &endpoint, error, st && st->connect_ns ? now - st->connect_ns : 0, now);
		return 0;
	}
	if (st && st->established_ns) {
		struct tcp_sock *tp = (struct tcp_sock *)sk;
		__u8 role = st->role;

		stat_add(&endpoint, TCP_STAT_CLOSED, role, 0, 0, 1);
		stat_add(&endpoint, TCP_STAT_BYTES_SENT, role, 0, 0, BPF_CORE_READ(tp, bytes_acked));
		stat_add(&endpoint, TCP_STAT_BYTES_RECEIVED, role, 0, 0, BPF_CORE_READ(tp, bytes_received));
		hist_add(&tcp_connections_duration, &endpoint, role, (now - st->established_ns) / 1000);
		st->established_ns = 0;
	}
	return 0;
}
