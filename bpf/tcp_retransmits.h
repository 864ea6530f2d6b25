/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Kernel/user contract of the tcp-retransmits probe group. */
#ifndef TCP_RETRANSMITS_H
#define TCP_RETRANSMITS_H

#include "flowtel.h"

struct tcp_retransmits_key {
	struct flowtel_endpoint_key endpoint;
};

struct tcp_retransmits_value {
	__u64 events;		/* successful tcp_retransmit_skb calls */
	__u64 segments;		/* segments they carried (gso_segs), what TcpRetransSegs counts */
};

struct tcp_retransmit_event {
	struct flowtel_event_header header;
	struct flowtel_tuple tuple;
	__u64 cgroup_id;
	__u32 netns_ino;
	__u32 segments;
	__u8 state;		/* TCP_* state of the socket */
	__u8 pad[7];
};

#endif
