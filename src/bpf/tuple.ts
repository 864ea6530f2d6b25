/** Decodes struct flowtel_tuple (addresses stored as 16 bytes, IPv4 mapped). */
import { StructReader } from './struct-reader';
import type { StructLayoutInfo } from './native';

export interface Tuple {
  family: 'ipv4' | 'ipv6';
  localAddress: string;
  localPort: number;
  peerAddress: string;
  peerPort: number;
}

const TUPLE_FIELDS = ['saddr', 'daddr', 'sport', 'dport', 'family'] as const;
type TupleField = (typeof TUPLE_FIELDS)[number];
const AF_INET6 = 10;

export class TupleDecoder {
  private readonly reader: StructReader<TupleField>;

  /** `prefix` is the member name of the tuple inside the event struct, e.g. "tuple". */
  constructor(eventStruct: string, layout: StructLayoutInfo, prefix: string) {
    const nested: StructLayoutInfo = { size: layout.size, members: {} };
    for (const field of TUPLE_FIELDS) {
      const member = layout.members[`${prefix}.${field}`];
      if (member) nested.members[field] = member;
    }
    this.reader = new StructReader(`${eventStruct}.${prefix}`, nested, TUPLE_FIELDS);
  }

  /**
   * The tuple's part of an event's aggregation key: family, both addresses and
   * ports, with the one port `ports` calls the client's left out. Raw bytes,
   * so repeats are recognized without decoding.
   */
  repeatKey(buf: Buffer, recordOffset: number, ports: EphemeralPorts): string {
    const at = recordOffset;
    const localPort = this.reader.uint(buf, at, 'sport');
    const peerPort = this.reader.uint(buf, at, 'dport');
    const client = ports.clientSide(localPort, peerPort);
    const saddr = this.reader.member('saddr');
    const daddr = this.reader.member('daddr');
    return (
      `${this.reader.uint(buf, at, 'family')}|` +
      `${buf.toString('latin1', at + saddr.offset, at + saddr.offset + saddr.size)}|${client === 'local' ? '*' : localPort}|` +
      `${buf.toString('latin1', at + daddr.offset, at + daddr.offset + daddr.size)}|${client === 'peer' ? '*' : peerPort}`
    );
  }

  /** Member offsets are relative to the event, so `recordOffset` is where the event starts. */
  decode(buf: Buffer, recordOffset: number): Tuple {
    const at = recordOffset;
    const family = this.reader.uint(buf, at, 'family') === AF_INET6 ? 'ipv6' : 'ipv4';
    return {
      family,
      localAddress: formatAddress(this.reader.bytes(buf, at, 'saddr')),
      localPort: this.reader.uint(buf, at, 'sport'),
      peerAddress: formatAddress(this.reader.bytes(buf, at, 'daddr')),
      peerPort: this.reader.uint(buf, at, 'dport'),
    };
  }
}

/**
 * Tells the client's port from the server's by net.ipv4.ip_local_port_range:
 * the client side is the one whose port is ephemeral when the other's is not.
 * Repeats of an event from new connections differ only in that port.
 */
export class EphemeralPorts {
  constructor(
    private readonly low: number,
    private readonly high: number,
  ) {}

  isEphemeral(port: number): boolean {
    return port >= this.low && port <= this.high;
  }

  /** 'local' or 'peer' when exactly one side's port is ephemeral; undefined when both or neither are (no telling). */
  clientSide(localPort: number, peerPort: number): 'local' | 'peer' | undefined {
    const local = this.isEphemeral(localPort);
    const peer = this.isEphemeral(peerPort);
    if (local === peer) return undefined;
    return local ? 'local' : 'peer';
  }

  /**
   * The server's port of a connection, as the BPF programs pick it for flow
   * keys (flowtel_server_port): the non-ephemeral side's, else the lower;
   * the known one while the other is still 0.
   */
  serverPort(localPort: number, peerPort: number): number {
    if (localPort === 0 || peerPort === 0) return localPort | peerPort;
    const client = this.clientSide(localPort, peerPort);
    return client === 'local' ? peerPort : client === 'peer' ? localPort : Math.min(localPort, peerPort);
  }

  /** "address:port", or the address alone for the client's side (the text of a summary). */
  endpointText(address: string, port: number, side: 'local' | 'peer', client: 'local' | 'peer' | undefined): string {
    return client === side ? address : `${address}:${port}`;
  }
}

/** 16 address bytes to text; ::ffff:a.b.c.d is shown as a.b.c.d. */
export function formatAddress(bytes: Buffer): string {
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped) return `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i));
  // Compress the longest run of two or more zero groups (RFC 5952).
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}
