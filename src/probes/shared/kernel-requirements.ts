/**
 * Kernel requirements several probe groups share (see src/bpf/hooks.ts).
 */
import type { HookSpec, KernelRequirement } from '../../bpf/hooks';

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

/**
 * A tracepoint hook whose program reads TCP fields of its socket, in two variants that count the same: through
 * the bpf_rdonly_cast kfunc (a move), and `<program>__skc_cast` through the bpf_skc_to_tcp_sock helper (a call),
 * for kernels without the kfunc.
 */
export function tcpFieldsHook<Name extends string>(name: Name, args: number, since: string): HookSpec<Name | `${Name}__skc_cast`> {
  const requires = [SOCKET_CGROUP, tracepoint(name, args, since)];
  return {
    hook: `tp_btf/${name}`,
    program: name,
    attachBySection: true,
    variants: [
      { program: name, requires: [...requires, RDONLY_CAST] },
      { program: `${name}__skc_cast` as const, requires },
    ],
  };
}
