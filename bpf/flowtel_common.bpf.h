/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Maps and helpers included by every probe-group object. The ring buffer and
 * the loss counters are declared in each object, but the agent makes them one:
 * the first loaded object creates them and the others reuse its fds.
 */
#ifndef FLOWTEL_COMMON_BPF_H
#define FLOWTEL_COMMON_BPF_H

#include "flowtel.h"

#define AF_INET 2
#define AF_INET6 10

/* Sized by the agent before load (resize); a power of two of pages. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} flowtel_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FLOWTEL_LOSS_REASON_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} flowtel_losses SEC(".maps");

/* Per-CPU fixed one-second window for event rate limiting. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flowtel_rate_window);
} flowtel_rate SEC(".maps");

/*
 * Enums used only as constants leave no BTF behind; this unused global keeps
 * them in every object so user space reads their values instead of copying them.
 */
struct flowtel_btf_anchor {
	enum flowtel_event_kind kind;
	enum flowtel_loss_reason loss_reason;
} flowtel_btf_anchor __attribute__((unused));

/* Events per second per CPU; 0 disables events (counters still run). */
const volatile __u64 flowtel_events_per_cpu_per_sec = 100;

static __always_inline void flowtel_count_loss(__u32 reason)
{
	__u64 *slot = bpf_map_lookup_elem(&flowtel_losses, &reason);

	if (slot)
		*slot += 1;
}

/* True when this CPU may emit one more event in the current second. */
static __always_inline bool flowtel_event_allowed(__u64 now)
{
	__u32 zero = 0;
	struct flowtel_rate_window *w = bpf_map_lookup_elem(&flowtel_rate, &zero);

	if (!w)
		return false;
	if (now - w->window_start_ns >= 1000000000ULL) {
		w->window_start_ns = now;
		w->emitted = 0;
	}
	if (w->emitted >= flowtel_events_per_cpu_per_sec) {
		flowtel_count_loss(FLOWTEL_LOSS_RATE_LIMITED);
		return false;
	}
	w->emitted++;
	return true;
}

static __always_inline void flowtel_fill_header(struct flowtel_event_header *h, __u16 kind,
						__u16 size, __u64 now)
{
	h->kind = kind;
	h->size = size;
	h->cpu = bpf_get_smp_processor_id();
	h->timestamp_ns = now;
}

/* cgroup v2 id of the cgroup that created a full socket; 0 if unknown. */
static __always_inline __u64 flowtel_socket_cgroup_id(struct sock *sk)
{
	return BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);
}

static __always_inline void flowtel_fill_tuple(struct flowtel_tuple *t, struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	t->family = family;
	t->protocol = BPF_CORE_READ(sk, sk_protocol);
	t->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	t->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET) {
		__u32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		__builtin_memset(t->saddr, 0, 10);
		__builtin_memset(t->daddr, 0, 10);
		t->saddr[10] = t->saddr[11] = 0xff;
		t->daddr[10] = t->daddr[11] = 0xff;
		__builtin_memcpy(&t->saddr[12], &s, 4);
		__builtin_memcpy(&t->daddr[12], &d, 4);
	} else {
		BPF_CORE_READ_INTO(&t->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&t->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
}

#endif
