// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * tcp-rtt: the smoothed RTT (srtt, µs) of sockets receiving segments, from
 * tp_btf/tcp_probe, into a quarter-octave histogram per local endpoint (per
 * flow at flow granularity).
 *
 * Each socket is sampled at its first segment after the handshake, and then
 * at most once per window of `tcp_rtt_sample_interval_jiffies`: at its first
 * segment in a window that its previous incoming segment was not in
 * (tcp_sock.rcv_tstamp, the jiffies of the last ACK received, which every
 * segment of an established connection carries). Sampling per segment would weight the
 * distribution by ACK rate, and ACKs arrive fastest exactly when the RTT is
 * lowest; sampling by time gives the RTT a connection had over time (what
 * `ss` shows at any moment) and bounds the cost per connection.
 *
 * The decision reads only the socket, which the receive path is about to
 * touch anyway: socket storage for a last-sample time cost a cold storage
 * lookup per segment, and its creation about 1.3 us per socket under churn.
 * (tcp_mstamp would not do: it is refreshed by sends too, and a sender that
 * writes at the start of every window would never be sampled again.)
 *
 * Two programs on the one hook, of which the agent loads the one this kernel
 * can run: tcp_probe reads the socket through the bpf_rdonly_cast kfunc (6.2+),
 * tcp_probe__skc_cast through the bpf_skc_to_tcp_sock helper (5.9+).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "flowtel_common.bpf.h"
#include "tcp_rtt.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The sample window in jiffies (user space converts sampleIntervalMs with CONFIG_HZ). */
const volatile __u32 tcp_rtt_sample_interval_jiffies = 13;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct tcp_rtt_key);
	__type(value, struct flowtel_histogram);
} tcp_rtt_histograms SEC(".maps");

static __always_inline int sample(struct sock *sk, bool kfunc)
{
	/* tcp_probe fires in tcp_rcv_established: always a full TCP socket (the helper checks anyway). */
	struct tcp_sock *tp = flowtel_tcp_sock(sk, kfunc);
	__u32 window = tcp_rtt_sample_interval_jiffies;

	if (window == 0 || !tp)
		return 0;
	/* Neither data received nor any acked but the SYN: the first segment of the connection. */
	bool first = tp->bytes_received == 0 && tp->bytes_acked <= 1;

	/* rcv_tstamp is tcp_jiffies32, the low 32 bits of jiffies; tcp_probe runs before tcp_ack updates it. */
	__u32 now = (__u32)bpf_jiffies64();
	__u32 previous = tp->rcv_tstamp;

	/*
	 * A busy connection's previous segment came in this very jiffy: same
	 * window, decided without the two divisions (the common case under load).
	 */
	if (!first && (now == previous || now / window == previous / window))
		return 0;

	__u32 srtt_us = tp->srtt_us >> 3;

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

SEC("tp_btf/tcp_probe")
int BPF_PROG(tcp_probe, struct sock *sk, const struct sk_buff *skb)
{
	return sample(sk, FLOWTEL_CAST_KFUNC);
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(tcp_probe__skc_cast, struct sock *sk, const struct sk_buff *skb)
{
	return sample(sk, FLOWTEL_CAST_HELPER);
}
