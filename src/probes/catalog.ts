/**
 * Every probe group the agent knows, in load order: its name, its kernel
 * hooks (with their program variants), what a user goes without when it does
 * not run, and how to build it from the config. The agent and `flowtel doctor`
 * both walk this list.
 */
import type { HookSpec } from '../bpf/hooks';
import type { KernelHz } from '../bpf/kernel-hz';
import type { FlowtelConfig } from '../config/config';
import { DROPS_HOOKS, DropsGroup } from './drops';
import { FLOWS_HOOKS, FlowsGroup } from './flows';
import { TCP_CONNECTIONS_HOOKS, TcpConnectionsGroup } from './tcp-connections';
import { TCP_RESETS_HOOKS, TcpResetsGroup } from './tcp-resets';
import { TCP_RETRANSMITS_HOOKS, TcpRetransmitsGroup } from './tcp-retransmits';
import { TCP_RTT_HOOKS, TcpRttGroup } from './tcp-rtt';
import type { ProbeGroup } from './types';

/** What groups need to know of the node before they are built. */
export interface NodeFacts {
  /** The kernel's tick rate (tcp-rtt samples by jiffies). */
  kernelHz: KernelHz;
}

export interface ProbeGroupEntry {
  name: string;
  hooks: readonly HookSpec[];
  /** What is missing from the telemetry while the group does not run. */
  withoutIt: string;
  enabled(config: FlowtelConfig): boolean;
  build(config: FlowtelConfig, node: NodeFacts): ProbeGroup;
}

export const PROBE_GROUPS: readonly ProbeGroupEntry[] = [
  {
    name: 'tcp-retransmits',
    hooks: TCP_RETRANSMITS_HOOKS,
    withoutIt: 'no retransmitted segments (flowtel.tcp.retransmits) and no retransmission log records',
    enabled: (c) => c.probes.tcpRetransmits.enabled,
    build: (c) => new TcpRetransmitsGroup(c.probes.tcpRetransmits),
  },
  {
    name: 'tcp-resets',
    hooks: TCP_RESETS_HOOKS,
    withoutIt: 'no resets sent or received (flowtel.tcp.resets) and no reset log records',
    enabled: (c) => c.probes.tcpResets.enabled,
    build: (c) => new TcpResetsGroup(c.probes.tcpResets),
  },
  {
    name: 'drops',
    hooks: DROPS_HOOKS,
    withoutIt: 'no dropped packets by kernel reason (flowtel.network.drops) and no drop log records',
    enabled: (c) => c.probes.drops.enabled,
    build: (c) => new DropsGroup(c.probes.drops),
  },
  {
    name: 'tcp-connections',
    hooks: TCP_CONNECTIONS_HOOKS,
    withoutIt: 'no connection opens, failures, closes, live connections or handshake and lifetime histograms',
    enabled: (c) => c.probes.tcpConnections.enabled,
    build: (c) => new TcpConnectionsGroup(c.probes.tcpConnections),
  },
  {
    name: 'tcp-rtt',
    hooks: TCP_RTT_HOOKS,
    withoutIt: 'no round-trip-time histograms (flowtel.tcp.rtt)',
    enabled: (c) => c.probes.tcpRtt.enabled,
    build: (c, node) => new TcpRttGroup(c.probes.tcpRtt, node.kernelHz),
  },
  {
    name: 'flows',
    hooks: FLOWS_HOOKS,
    withoutIt: 'no bytes and packets per pod (k8s.pod.network.io)',
    enabled: (c) => c.probes.flows.enabled,
    build: (c) => new FlowsGroup(c.probes.flows, c.cgroupRoot),
  },
];
