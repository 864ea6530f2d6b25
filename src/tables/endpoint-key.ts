/** Decodes struct flowtel_endpoint_key (bpf/flowtel.h) embedded as `endpoint` in a map key or event. */
import type { Attributes } from '@opentelemetry/api';
import type { StructLayoutInfo } from '../bpf/native';
import { StructReader } from '../bpf/struct-reader';
import type { EndpointRef } from '../k8s/attribution';
import { ATTR_NETWORK_PEER_ADDRESS, ATTR_NETWORK_TRANSPORT, ATTR_NETWORK_TYPE, ATTR_SERVER_PORT } from '../semconv';
import { formatAddress } from '../bpf/tuple';

const FIELDS = ['endpoint.cgroup_id', 'endpoint.netns_ino', 'endpoint.server_port', 'endpoint.protocol', 'endpoint.family', 'endpoint.peer_addr'] as const;
type Field = (typeof FIELDS)[number];
const AF_INET6 = 10;
const TRANSPORTS: Record<number, string> = { 6: 'tcp', 17: 'udp', 1: 'icmp', 58: 'icmp' };

export interface PeerInfo {
  /** Stable text identity of the peer, for aggregation keys. */
  key: string;
  address: string;
  attributes: Attributes;
}

export class EndpointKeyReader {
  private readonly reader: StructReader<Field>;

  constructor(structName: string, layout: StructLayoutInfo) {
    this.reader = new StructReader(structName, layout, FIELDS);
  }

  ref(buf: Buffer, offset: number): EndpointRef {
    return { cgroupId: this.reader.bigint(buf, offset, 'endpoint.cgroup_id'), netnsIno: this.reader.uint(buf, offset, 'endpoint.netns_ino') };
  }

  /** The peer of a flow-granularity row; undefined at pod granularity (family 0). */
  peer(buf: Buffer, offset: number): PeerInfo | undefined {
    const fields = this.peerFields(buf, offset);
    return fields && peerInfo(fields.address, fields.serverPort, fields.protocol, fields.family);
  }

  /**
   * Copies the peer's identity (server port, protocol, whether there is a peer, address:
   * PACKED_PEER_SIZE bytes) into `target` at `at`, for keys built from it. The family itself is
   * left out, as peerKeyOf leaves it out: a dual-stack socket reports an IPv4 peer as AF_INET6
   * with a mapped address, and is the same peer as an AF_INET socket's. Returns the family: 0 at
   * pod granularity (no peer).
   */
  packPeer(buf: Buffer, offset: number, target: Buffer, at: number): number {
    target.writeUInt16LE(this.reader.uint(buf, offset, 'endpoint.server_port'), at);
    target.writeUInt8(this.reader.uint(buf, offset, 'endpoint.protocol'), at + 2);
    const family = this.reader.uint(buf, offset, 'endpoint.family');
    target.writeUInt8(family === 0 ? 0 : 1, at + 3);
    this.reader.bytes(buf, offset, 'endpoint.peer_addr').copy(target, at + 4);
    return family;
  }

  /** The peer's fields alone, without its key and attributes (rows kept by the thousand build those when needed). */
  peerFields(buf: Buffer, offset: number): PeerFields | undefined {
    const family = this.reader.uint(buf, offset, 'endpoint.family');
    if (family === 0) return undefined;
    return {
      address: formatAddress(this.reader.bytes(buf, offset, 'endpoint.peer_addr')),
      serverPort: this.reader.uint(buf, offset, 'endpoint.server_port'),
      protocol: this.reader.uint(buf, offset, 'endpoint.protocol'),
      family,
    };
  }
}

/** Bytes of a peer packed by EndpointKeyReader.packPeer: server port (u16), protocol, has-a-peer, address (16). */
export const PACKED_PEER_SIZE = 20;

export interface PeerFields {
  address: string;
  serverPort: number;
  protocol: number;
  family: number;
}

/** Peer identity and attributes of a flow: the same for kernel rows and for series built in user space. */
export function peerInfo(address: string, serverPort: number, protocol: number, family: number): PeerInfo {
  return { key: peerKeyOf(address, serverPort, protocol), address, attributes: peerAttributes(address, serverPort, protocol, family) };
}

export function peerKeyOf(address: string, serverPort: number, protocol: number): string {
  return [address, serverPort, protocol].join('|');
}

/*
 * The names, read once: a flow row's attributes are built for every data
 * point of every export, and each read of an `export *` re-export of
 * src/semconv goes through a getter.
 */
const PEER_ADDRESS = ATTR_NETWORK_PEER_ADDRESS;
const SERVER_PORT = ATTR_SERVER_PORT;
const TRANSPORT = ATTR_NETWORK_TRANSPORT;
const NETWORK_TYPE = ATTR_NETWORK_TYPE;

/** The peer attributes of a flow. */
export function peerAttributes(address: string, serverPort: number, protocol: number, family: number): Attributes {
  return {
    [PEER_ADDRESS]: address,
    [SERVER_PORT]: serverPort,
    [TRANSPORT]: TRANSPORTS[protocol] ?? `ipproto-${protocol}`,
    [NETWORK_TYPE]: family === AF_INET6 && !address.includes('.') ? 'ipv6' : 'ipv4',
  };
}
