// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * tcp-rtt: the smoothed RTT (srtt, µs) of sockets receiving segments, from
 * tp_btf/tcp_probe, into a quarter-octave histogram per local endpoint (per
 * flow at flow granularity).
 *
 * Each socket is sampled at most once per `tcp_rtt_sample_interval_ns`
 * (its first segment always). Sampling per segment would weight the
 * distribution by ACK rate, and ACKs arrive fastest exactly when the RTT is
 * lowest; sampling by time gives the RTT a connection had over time (what
 * `ss` shows at any moment) and bounds the cost per connection.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "flowtel_common.bpf.h"
#include "tcp_rtt.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u64 tcp_rtt_sample_interval_ns = 50000000;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct tcp_rtt_key);
	__type(value, struct flowtel_histogram);
} tcp_rtt_histograms SEC(".maps");

SEC("tp_btf/tcp_probe")
int BPF_PROG(tcp_probe, struct sock *sk, const struct sk_buff *skb)
{
	__u64 now = bpf_ktime_get_ns();
	/* Usually there already: tcp-connections creates it when the connection starts. */
	struct flowtel_socket_state *st = bpf_sk_storage_get(&flowtel_sockets, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);

	if (!st || (st->rtt_sampled_ns && now - st->rtt_sampled_ns < tcp_rtt_sample_interval_ns))
		return 0;
	st->rtt_sampled_ns = now;

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
