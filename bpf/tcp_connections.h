/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Kernel/user contract of the tcp-connections probe group. */
#ifndef TCP_CONNECTIONS_H
#define TCP_CONNECTIONS_H

#include "flowtel.h"

enum tcp_connection_role {
	TCP_ROLE_CLIENT = 1,
	TCP_ROLE_SERVER = 2,
};

/* What a row of tcp_connections_stats counts. */
enum tcp_connection_stat {
	TCP_STAT_OPENED = 1,		/* handshakes completed, by role */
	TCP_STAT_FAILED = 2,		/* client handshakes that ended in CLOSE, by errno */
	TCP_STAT_CLOSED = 3,		/* established connections closed, by role */
	TCP_STAT_BYTES_SENT = 4,	/* bytes acked by the peer, of closed connections */
	TCP_STAT_BYTES_RECEIVED = 5,	/* bytes received, of closed connections */
	TCP_STAT_STATE_DELTA = 6,	/* sockets entering (+1) and leaving (-1) a state */
};

struct tcp_connections_key {
	struct flowtel_endpoint_key endpoint;
	__u8 stat;		/* enum tcp_connection_stat */
	__u8 role;		/* enum tcp_connection_role, or 0 */
	__u8 state;		/* TCP state, for TCP_STAT_STATE_DELTA */
	__u8 pad;
	__s32 error;		/* sk_err (errno) for TCP_STAT_FAILED; 0 = closed by the application */
};

struct tcp_connections_hist_key {
	struct flowtel_endpoint_key endpoint;
	__u8 role;
	__u8 pad[7];
};

struct tcp_connect_failed_event {
	struct flowtel_event_header header;
	struct flowtel_tuple tuple;
	__u64 cgroup_id;
	__u64 duration_ns;	/* from connect() to the failure */
	__u32 netns_ino;
	__s32 error;
};

#endif
