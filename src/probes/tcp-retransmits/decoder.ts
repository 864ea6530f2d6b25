/** Decodes struct tcp_retransmit_event using the object's BTF layout. */
import type { NativeBpfObject } from '../../bpf/native';
import { StructReader } from '../../bpf/struct-reader';
import { TupleDecoder, type Tuple } from '../shared/tuple';

export interface TcpRetransmitEvent {
  timestampNs: bigint;
  cgroupId: bigint;
  segments: number;
  state: string;
  tuple: Tuple;
}

const FIELDS = ['header.timestamp_ns', 'cgroup_id', 'segments', 'state'] as const;

export class TcpRetransmitDecoder {
  private readonly reader: StructReader<(typeof FIELDS)[number]>;
  private readonly tuple: TupleDecoder;
  private readonly stateNames: Map<number, string>;

  constructor(object: NativeBpfObject, tcpStates: Record<string, number>) {
    const layout = object.structLayout('tcp_retransmit_event');
    this.reader = new StructReader('tcp_retransmit_event', layout, FIELDS);
    this.tuple = new TupleDecoder('tcp_retransmit_event', layout, 'tuple');
    this.stateNames = new Map(Object.entries(tcpStates).map(([name, value]) => [value, name.replace(/^TCP_/, '')]));
  }

  decode(buf: Buffer, offset: number): TcpRetransmitEvent {
    const state = this.reader.uint(buf, offset, 'state');
    return {
      timestampNs: this.reader.bigint(buf, offset, 'header.timestamp_ns'),
      cgroupId: this.reader.bigint(buf, offset, 'cgroup_id'),
      segments: this.reader.uint(buf, offset, 'segments'),
      state: this.stateNames.get(state) ?? `STATE_${state}`,
      tuple: this.tuple.decode(buf, offset),
    };
  }
}
