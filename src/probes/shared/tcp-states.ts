/** TCP state names from the kernel's BTF (an anonymous enum, found by a member). */
import type { NativeAddon } from '../../bpf/native';

/** TCP_* names → network.connection.state values of the semantic conventions. */
const SEMCONV_STATE: Record<string, string> = {
  ESTABLISHED: 'established',
  SYN_SENT: 'syn_sent',
  SYN_RECV: 'syn_received',
  FIN_WAIT1: 'fin_wait_1',
  FIN_WAIT2: 'fin_wait_2',
  TIME_WAIT: 'time_wait',
  CLOSE: 'closed',
  CLOSE_WAIT: 'close_wait',
  LAST_ACK: 'last_ack',
  LISTEN: 'listen',
  CLOSING: 'closing',
};

export class TcpStateNames {
  private readonly byValue: Map<number, string>;

  constructor(kernelEnum: Record<string, number>) {
    this.byValue = new Map(Object.entries(kernelEnum).map(([k, v]) => [v, k.replace(/^TCP_/, '')]));
  }

  /** "ESTABLISHED", or STATE_<n> for a value this kernel does not name. */
  name(value: number): string {
    return this.byValue.get(value) ?? `STATE_${value}`;
  }

  /** The states live sockets are counted in: [kernel value, semconv name], each a liveStateName. */
  liveStates(): Array<[number, string]> {
    const out: Array<[number, string]> = [];
    for (const value of this.byValue.keys()) {
      const name = this.liveStateName(value);
      if (name) out.push([value, name]);
    }
    return out.sort((a, b) => a[0] - b[0]);
  }

  /**
   * The network.connection.state of a state live sockets are counted in, else undefined. Not CLOSE (no live
   * socket) and not SYN_RECV: a half-open connection is a request socket, which is not counted, and an accepted
   * socket is in SYN_RECV only while the kernel builds it, before its peer address is set (as bpf/tcp_connections.bpf.c).
   */
  liveStateName(value: number): string | undefined {
    const name = this.semconv(value);
    return name === 'closed' || name === 'syn_received' ? undefined : name;
  }

  /** network.connection.state value, or undefined for kernel-internal states. */
  semconv(value: number): string | undefined {
    return SEMCONV_STATE[this.name(value)];
  }
}

const cached = new WeakMap<NativeAddon, TcpStateNames>();

/** The running kernel's TCP states; found once (finding an anonymous enum scans every BTF type), shared by groups. */
export function tcpStateNames(native: NativeAddon): TcpStateNames {
  let names = cached.get(native);
  if (!names) cached.set(native, (names = new TcpStateNames(native.kernelEnumWithMember('TCP_ESTABLISHED'))));
  return names;
}
