/** Reads the local endpoint (cgroup_id, netns_ino) and tuple every event struct carries. */
import type { Attributes } from '@opentelemetry/api';
import type { LoadedObject, ObjectNames } from '../bpf/object-names';
import { StructReader } from '../bpf/struct-reader';
import type { CgroupAttribution, EndpointRef } from '../k8s/attribution';
import {
  ATTR_FLOWTEL_CGROUP_ID,
  ATTR_NETWORK_LOCAL_ADDRESS,
  ATTR_NETWORK_LOCAL_PORT,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_NETWORK_TYPE,
} from '../semconv';
import { TupleDecoder, type EphemeralPorts, type Tuple } from '../bpf/tuple';

/** `N`: the names of the object (generated from its BTF), which tsc checks the event struct's name against. */
export class EventReader<F extends string, N extends ObjectNames = ObjectNames> {
  readonly fields: StructReader<F | 'header.timestamp_ns' | 'cgroup_id' | 'netns_ino'>;
  readonly tuple: TupleDecoder;

  constructor(object: LoadedObject<N>, structName: N['structs'], fields: readonly F[]) {
    const layout = object.structLayout(structName);
    this.fields = new StructReader(structName, layout, ['header.timestamp_ns', 'cgroup_id', 'netns_ino', ...fields]);
    this.tuple = new TupleDecoder(structName, layout, 'tuple');
  }

  timestamp(buf: Buffer, offset: number): bigint {
    return this.fields.bigint(buf, offset, 'header.timestamp_ns');
  }

  ref(buf: Buffer, offset: number): EndpointRef {
    return { cgroupId: this.fields.bigint(buf, offset, 'cgroup_id'), netnsIno: this.fields.uint(buf, offset, 'netns_ino') };
  }

  /** The local endpoint's part of an aggregation key (cgroup id and netns inode, raw). */
  endpointKey(buf: Buffer, offset: number): string {
    return this.fields.keyPart(buf, offset, 'cgroup_id') + this.fields.keyPart(buf, offset, 'netns_ino');
  }

  /** Local endpoint attributes plus the flowtel.cgroup.id of the event. */
  endpointAttributes(buf: Buffer, offset: number, attribution: CgroupAttribution): Attributes {
    const ref = this.ref(buf, offset);
    return { ...attribution.resolveRef(ref).attributes, [ATTR_FLOWTEL_CGROUP_ID]: ref.cgroupId.toString() };
  }
}

/** network.* attributes of a socket tuple (saddr local, daddr peer), and the peer's Kubernetes identity. */
export function socketTupleAttributes(tuple: Tuple, attribution: CgroupAttribution): Attributes {
  return {
    ...attribution.peerIdentity(tuple.peerAddress),
    [ATTR_NETWORK_TYPE]: tuple.family,
    [ATTR_NETWORK_LOCAL_ADDRESS]: tuple.localAddress,
    // 0: a failed connect never got a local port.
    ...(tuple.localPort ? { [ATTR_NETWORK_LOCAL_PORT]: tuple.localPort } : {}),
    [ATTR_NETWORK_PEER_ADDRESS]: tuple.peerAddress,
    [ATTR_NETWORK_PEER_PORT]: tuple.peerPort,
  };
}

/**
 * A tuple as a summary of repeats shows it: "address:port" each side, the
 * client's side without its (ephemeral) port, and that port's attribute
 * among those the summary leaves out. `portAttributes` name the two ports as
 * the event's attributes do (a socket's local and peer ports by default; a
 * dropped packet's source and destination ports).
 */
export function socketTupleSummary(
  tuple: Tuple,
  ports: EphemeralPorts,
  portAttributes: { local: string; peer: string } = { local: ATTR_NETWORK_LOCAL_PORT, peer: ATTR_NETWORK_PEER_PORT },
): { local: string; peer: string; varying: string[] } {
  const client = ports.clientSide(tuple.localPort, tuple.peerPort);
  return {
    local: ports.endpointText(tuple.localAddress, tuple.localPort, 'local', client),
    peer: ports.endpointText(tuple.peerAddress, tuple.peerPort, 'peer', client),
    varying: client ? [portAttributes[client]] : [],
  };
}
