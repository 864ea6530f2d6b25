/**
 * Kernel requirements several probe groups share (see src/bpf/hooks.ts).
 */
import type { HookSpec, KernelRequirement, ProgramVariant } from '../../bpf/hooks';

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

/** Programs that walk a map (bpf_for_each_map_elem): where the kernel has it, TCP is read from the sockets. */
export const MAP_WALK: KernelRequirement = { kind: 'helper', name: 'bpf_for_each_map_elem', since: '5.13' };
export const STATE_TRACEPOINT = tracepoint('inet_sock_set_state', 3, '4.16');
export const PROBE_TRACEPOINT = tracepoint('tcp_probe', 2, '4.16');
/** Everything a group's socket table needs (socketTableHooks): where all of it holds, no program runs per TCP packet. */
export const SOCKET_TABLE: readonly KernelRequirement[] = [SOCKET_CGROUP, STATE_TRACEPOINT, PROBE_TRACEPOINT, MAP_WALK];

/**
 * The three hooks of a group that reads TCP sockets instead of packets (see bpf/tcp_rtt.bpf.c): `track` keeps
 * sockets from ESTABLISHED to CLOSE (in variants, best first), `walk` reads them when user space runs it, `adopt`
 * takes in the connections older than the agent for a while after start. On kernels without SOCKET_TABLE none
 * loads, and the group's per-packet hooks count instead.
 */
export function socketTableHooks<Name extends string>(track: readonly ProgramVariant<Name>[], walk: Name, adopt: Name, walkWhen: string): HookSpec<Name>[] {
  return [
    { hook: 'tp_btf/inet_sock_set_state', program: track[0].program as Name, attachBySection: true, variants: [...track, { program: null, requires: [] }] },
    {
      hook: `raw_tp (run ${walkWhen})`,
      program: walk,
      attachBySection: false,
      variants: [
        { program: walk, requires: [MAP_WALK] },
        { program: null, requires: [] },
      ],
    },
    {
      hook: 'tp_btf/tcp_probe (for the adoption window)',
      program: adopt,
      attachBySection: false,
      variants: [
        { program: adopt, requires: [SOCKET_CGROUP, PROBE_TRACEPOINT, MAP_WALK] },
        { program: null, requires: [] },
      ],
    },
  ];
}
