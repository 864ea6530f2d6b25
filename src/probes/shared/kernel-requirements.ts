/**
 * Kernel requirements several probe groups share (see src/bpf/hooks.ts).
 */
import type { KernelRequirement } from '../../bpf/hooks';

/**
 * Programs that attribute a socket to its pod read the socket's cgroup from
 * sock_cgroup_data.cgroup. Before 5.15 that member was a tagged integer
 * (`val`); 5.10 stable kernels have the pointer from 5.10.226 on.
 */
export const SOCKET_CGROUP: KernelRequirement = { kind: 'member', struct: 'sock_cgroup_data', member: 'cgroup', since: '5.15 (5.10.226 in 5.10 stable)' };

/** The bpf_rdonly_cast kfunc: reads a struct sock as a struct tcp_sock at the cost of a move. */
export const RDONLY_CAST: KernelRequirement = { kind: 'kfunc', name: 'bpf_rdonly_cast', since: '6.2' };

/** A tracepoint with at least `args` arguments, the last of which is `argument` (when given). */
export function tracepoint(name: string, args: number, since: string, argument?: string): KernelRequirement {
  return { kind: 'tracepoint', tracepoint: name, args, since, ...(argument ? { argument } : {}) };
}
