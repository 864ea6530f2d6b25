export interface TcpRetransmitsConfig {
  enabled: boolean;
  /** Log records per second per CPU (kernel-side limit); 0 turns events off. */
  maxEventsPerSecondPerCpu: number;
  /** Cgroups the kernel map can count at once; beyond that, counts are lost and counted as map_full. */
  maxTrackedCgroups: number;
}
