/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Kernel/user contract of the flows probe group. */
#ifndef FLOWS_H
#define FLOWS_H

#include "flowtel.h"

struct flows_key {
	struct flowtel_endpoint_key endpoint;
	__u8 direction;		/* enum flowtel_direction */
	__u8 pad[7];
};

struct flows_value {
	__u64 bytes;		/* IP packet bytes (L3 length) */
	__u64 packets;		/* segments: a GSO packet counts its gso_segs */
};

#endif
