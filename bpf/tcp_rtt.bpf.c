// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * tcp-rtt: the smoothed RTT (srtt, µs) of sockets receiving segments, from
 * tp_btf/tcp_probe, sampled one segment in `tcp_rtt_sample_every`, into a
 * quarter-octave histogram per local endpoint (per flow at flow granularity).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "flowtel_common.bpf.h"
#include "tcp_rtt.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 tcp_rtt_sample_every = 8;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct tcp_rtt_key);
	__type(value, struct flowtel_histogram);
} tcp_rtt_histograms SEC(".maps");

SEC("tp_btf/tcp_probe")
int BPF_PROG(tcp_probe, struct sock *sk, const struct sk_buff *skb)
{
	if (tcp_rtt_sample_every > 1 && bpf_get_prandom_u32() % tcp_rtt_sample_every != 0)
		return 0;

	struct tcp_sock *tp = (struct tcp_sock *)sk;
	__u32 srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;

	if (srtt_us == 0)
		return 0; /* no RTT sample yet */

	struct tcp_rtt_key key = {};
	struct flowtel_tuple tuple = {};

	flowtel_endpoint_of_sock(&key.endpoint, sk);
	if (flowtel_flow_granularity) {
		flowtel_fill_tuple(&tuple, sk);
		flowtel_endpoint_set_peer(&key.endpoint, &tuple);
	}
	struct flowtel_histogram *h = flowtel_hist_row(&tcp_rtt_histograms, &key);

	if (h)
		flowtel_hist_add(h, srtt_us);
	return 0;
}
