/**
 * Every probe group the agent knows, in load order. Config schema and
 * defaults, the agent, `flowtel doctor`, `validate`, the chart's schema check
 * and the docs check all walk this list; adding a group is one line here.
 */
import { object, type ObjectSpec, type Spec } from '../config/schema';
import type { ProbeGroupEntry, ProbesConfigOf } from './declaration';
import { drops } from './drops';
import { flows } from './flows';
import { tcpConnections } from './tcp-connections';
import { tcpResets } from './tcp-resets';
import { tcpRetransmits } from './tcp-retransmits';
import { tcpRtt } from './tcp-rtt';

export const PROBE_GROUPS = [tcpRetransmits, tcpResets, drops, tcpConnections, tcpRtt, flows] as const;

export type { NodeFacts, ProbeGroupEntry } from './declaration';

/** The `probes` section of the agent config: each group's config under its config key. */
export type ProbesConfig = ProbesConfigOf<typeof PROBE_GROUPS>;

/** The schema of the `probes` section. */
export function probesSchema(groups: readonly ProbeGroupEntry[] = PROBE_GROUPS): ObjectSpec<Record<string, Spec<unknown>>> {
  return object(Object.fromEntries(groups.map((g) => [g.configKey, g.configSchema])));
}

/** The defaults of the `probes` section (a fresh copy). */
export function probesDefaults(): ProbesConfig {
  return Object.fromEntries(PROBE_GROUPS.map((g) => [g.configKey, g.defaults()])) as ProbesConfig;
}
