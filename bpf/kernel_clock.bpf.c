// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * The kernel's tick counter, read on demand: the agent runs this program
 * twice (BPF_PROG_TEST_RUN, no attachment) a fraction of a second apart and
 * takes CONFIG_HZ from how far jiffies moved, where the kernel's build config
 * is not readable (a pod mounts no /boot, and container runtimes mask
 * /proc/timer_list). tcp-rtt needs it: it compares jiffies the kernel stored.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The low 32 bits of jiffies: the difference of two reads is all that is used. */
SEC("raw_tp")
int read_jiffies(void *ctx)
{
	return (int)bpf_jiffies64();
}
