/**
 * Metric names, units and descriptions. Names without a semantic convention
 * use the `flowtel.` prefix and follow the TCP-metrics proposal
 * (semantic-conventions #3682). Documented in docs/telemetry.md.
 */
export interface MetricName {
  readonly name: string;
  readonly unit: string;
  readonly description: string;
}

export const METRIC_TCP_RETRANSMITS: MetricName = {
  name: 'flowtel.tcp.retransmits',
  unit: '{segment}',
  description: 'TCP segments retransmitted by sockets of the endpoint (the kernel counts the same as TcpRetransSegs).',
};

export const METRIC_TCP_RETRANSMIT_EVENTS: MetricName = {
  name: 'flowtel.tcp.retransmit.events',
  unit: '{event}',
  description: 'Successful tcp_retransmit_skb calls; one call may resend several segments (TSO/GSO).',
};

export const METRIC_AGENT_EVENTS_RECEIVED: MetricName = {
  name: 'flowtel.agent.events.received',
  unit: '{event}',
  description: 'Kernel events that reached the agent through the ring buffer.',
};

export const METRIC_AGENT_EVENTS_LOST: MetricName = {
  name: 'flowtel.agent.events.lost',
  unit: '{event}',
  description: 'Kernel events or counts lost, by reason (ring_buffer_full, map_full, queue_full).',
};

export const METRIC_AGENT_EVENTS_SUPPRESSED: MetricName = {
  name: 'flowtel.agent.events.suppressed',
  unit: '{event}',
  description: 'Events not emitted because of the configured per-CPU rate limit (their counts are still in the metrics).',
};

/*
 * Export failures and log-queue drops are counted by the SDK's own
 * self-observability metrics (otel.sdk.exporter.*, otel.sdk.processor.log.*),
 * which the exporters pipeline wires to the same MeterProvider.
 */
