/** Per-group configuration, as validated by src/config/config.ts. */
export type Granularity = 'pod' | 'flow';

export interface CommonProbeConfig {
  enabled: boolean;
  /** pod: one series per local endpoint; flow: also per peer address, server port and transport. */
  granularity: Granularity;
  /** Rows the group's kernel map can hold; what does not fit is counted as lost (map_full). */
  maxRows: number;
}

export interface EventProbeConfig extends CommonProbeConfig {
  /** Log records per second per CPU (kernel-side limit); 0 turns events off. */
  maxEventsPerSecondPerCpu: number;
}

export interface DropsConfig extends EventProbeConfig {
  /** Reason names (without SKB_DROP_REASON_) to count; empty = all but denyReasons. */
  allowReasons: string[];
  denyReasons: string[];
}

export interface TcpConnectionsConfig extends EventProbeConfig {
  /**
   * Sockets whose connect or establishment time the kernel keeps until they close (handshake
   * and duration histograms, closes and bytes); a socket that finds no room is counted as lost (map_full).
   */
  maxTrackedSockets: number;
}

export interface TcpRttConfig extends CommonProbeConfig {
  /** Each socket's srtt is sampled at most this often (its first segment always). */
  sampleIntervalMs: number;
}

export interface FlowsConfig extends CommonProbeConfig {
  idleFlowTimeoutMs: number;
}

export interface ProbesConfig {
  tcpRetransmits: EventProbeConfig;
  tcpResets: EventProbeConfig;
  drops: DropsConfig;
  tcpConnections: TcpConnectionsConfig;
  tcpRtt: TcpRttConfig;
  flows: FlowsConfig;
}
