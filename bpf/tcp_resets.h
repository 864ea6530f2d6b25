/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Kernel/user contract of the tcp-resets probe group. */
#ifndef TCP_RESETS_H
#define TCP_RESETS_H

#include "flowtel.h"

struct tcp_resets_key {
	struct flowtel_endpoint_key endpoint;
	__u32 reason;		/* enum sk_rst_reason for sent resets; 0 for received */
	__u8 direction;		/* enum flowtel_direction */
	__u8 pad[3];
};

struct tcp_reset_event {
	struct flowtel_event_header header;
	struct flowtel_tuple tuple;	/* saddr/sport local, daddr/dport peer */
	__u64 cgroup_id;
	__u32 netns_ino;
	__u32 reason;
	__u8 direction;
	__u8 state;		/* TCP state of the socket; 0 without one */
	__u8 pad[6];
};

#endif
