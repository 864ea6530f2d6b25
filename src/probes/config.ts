/**
 * The config every probe group shares, and the schema fragments for it. A
 * group's own options live in its folder, next to the code that reads them.
 */
import { boolean, described, integer, object, oneOf, type ObjectSpec } from '../config/schema';

export type Granularity = 'pod' | 'flow';

export interface CommonProbeConfig {
  enabled: boolean;
  /** pod: one series per local endpoint; flow: also per peer address, server port and transport. */
  granularity: Granularity;
  /** Rows the group's kernel map can hold; what does not fit is counted as lost (map_full). */
  maxRows: number;
  /** At flow granularity: how long a peer's row may stay unchanged before it is deleted and its series ends. */
  idleFlowTimeoutMs: number;
}

export interface EventProbeConfig extends CommonProbeConfig {
  /** Log records per second per CPU (kernel-side limit); 0 turns events off. */
  maxEventsPerSecondPerCpu: number;
}

/** The schema of CommonProbeConfig, to spread into a group's own. */
export const COMMON_PROBE_FIELDS = {
  enabled: described(boolean(), 'load this probe group'),
  granularity: described(oneOf(['pod', 'flow'] as const), 'pod: one series per local endpoint; flow: plus the peer'),
  maxRows: integer(16, 1 << 22, 'rows the kernel map can hold'),
  idleFlowTimeoutMs: integer(1000, 86_400_000, 'milliseconds a flow may stay idle before its row is evicted'),
};

/** The schema of EventProbeConfig, to spread into a group's own. */
export const EVENT_PROBE_FIELDS = {
  enabled: COMMON_PROBE_FIELDS.enabled,
  granularity: COMMON_PROBE_FIELDS.granularity,
  maxEventsPerSecondPerCpu: integer(0, 1_000_000, 'log records per second per CPU; 0 turns events off'),
  maxRows: COMMON_PROBE_FIELDS.maxRows,
  idleFlowTimeoutMs: COMMON_PROBE_FIELDS.idleFlowTimeoutMs,
};

/** The default of idleFlowTimeoutMs: five minutes, so a peer seen every few minutes keeps one series. */
export const DEFAULT_IDLE_FLOW_TIMEOUT_MS = 300_000;

/** The config of a group whose options are the event fields alone, with the defaults of every such group. */
export function eventProbeConfig(): { schema: ObjectSpec<typeof EVENT_PROBE_FIELDS>; defaults: EventProbeConfig } {
  return {
    schema: object(EVENT_PROBE_FIELDS),
    defaults: { enabled: true, granularity: 'pod', maxEventsPerSecondPerCpu: 100, maxRows: 16384, idleFlowTimeoutMs: DEFAULT_IDLE_FLOW_TIMEOUT_MS },
  };
}
