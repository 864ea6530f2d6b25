/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Kernel/user contract of the tcp-connections probe group. */
#ifndef TCP_CONNECTIONS_H
#define TCP_CONNECTIONS_H

#include "flowtel.h"

enum tcp_connection_role {
	TCP_ROLE_CLIENT = 1,
	TCP_ROLE_SERVER = 2,
};

/*
 * Everything tcp-connections counts for one local endpoint (and peer, at flow
 * granularity), in one per-CPU row: a state transition costs one map lookup,
 * where a row per statistic cost two (leave the old state, enter the new one)
 * and more at open and close. Arrays are indexed by TCP state and by enum
 * tcp_connection_role; user space reads each element by its offset.
 */
#define TCP_CONNECTIONS_STATES 16	/* TCP states are 1..13; index state & 15 */
#define TCP_CONNECTIONS_ROLES 3		/* 0 = role not known */

struct tcp_connections_counts {
	__s64 sockets[TCP_CONNECTIONS_STATES];	/* sockets that entered minus left each state (CLOSE not counted) */
	__u64 opened[TCP_CONNECTIONS_ROLES];	/* handshakes completed */
	__u64 closed[TCP_CONNECTIONS_ROLES];	/* established connections closed */
	__u64 bytes_sent[TCP_CONNECTIONS_ROLES];	/* bytes acked by the peer, of closed connections */
	__u64 bytes_received[TCP_CONNECTIONS_ROLES];	/* bytes received, of closed connections */
};

/* Key of tcp_connections_counts: the endpoint alone (a struct, so user space reads it like every group's key). */
struct tcp_connections_key {
	struct flowtel_endpoint_key endpoint;
};

/* Client handshakes that ended in CLOSE, by errno: rare, so a row of their own. */
struct tcp_connections_failure_key {
	struct flowtel_endpoint_key endpoint;
	__s32 error;		/* sk_err (errno); 0 = closed by the application */
	__u32 pad;
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
