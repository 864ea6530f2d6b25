/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Kernel/user contract of the tcp-rtt probe group. */
#ifndef TCP_RTT_H
#define TCP_RTT_H

#include "flowtel.h"

struct tcp_rtt_key {
	struct flowtel_endpoint_key endpoint;
};

#endif
