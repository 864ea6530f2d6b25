/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Kernel/user contract of the drops probe group. */
#ifndef DROPS_H
#define DROPS_H

#include "flowtel.h"

/* Reasons are indexes of this filter (enum skb_drop_reason values are small). */
#define DROPS_MAX_REASONS 1024

struct drops_key {
	struct flowtel_endpoint_key endpoint;
	__u32 reason;		/* enum skb_drop_reason */
	__u32 pad;
};

struct drops_value {
	__u64 packets;
	__u64 bytes;
};

struct drop_event {
	struct flowtel_event_header header;
	struct flowtel_tuple tuple;	/* packet order: saddr is the source */
	__u64 cgroup_id;
	__u64 location;		/* kernel address of the function that freed the packet */
	__u32 netns_ino;
	__u32 reason;
	__u32 length;
	__u8 tuple_valid;
	__u8 pad[3];
};

#endif
