/**
 * Who a kernel map row belongs to: its local endpoint, its peer (flow
 * granularity) and the group's own key fields. The tables keep rows in
 * columns (counter-series.ts) and name them with these functions
 * (seriesKeyOf, keyFieldView, refKey); RowIdentity is the same naming as one
 * object, which the OTLP benches use to make flow series.
 */
import type { Attributes } from '@opentelemetry/api';
import { StructReader } from '../bpf/struct-reader';
import type { CgroupAttribution, EndpointRef, LocalEndpoint, PeerIdentity } from '../k8s/attribution';
import { peerAttributes } from './endpoint-key';

export interface KeyFieldView {
  uint(field: string): number;
  int(field: string): number;
}

export interface RowDescription {
  key: string;
  attributes: Attributes;
  /** The group's own classification of the row, e.g. which statistic it is. */
  tag?: string;
}

export type DescribeRow = (key: KeyFieldView) => RowDescription | undefined;

/**
 * Who a row is. One per kernel row, kept between collections, so it holds
 * only references to shared objects (endpoint, peer identity, group
 * description) and the few numbers of the peer: at 100,000 flows every byte
 * per row is 100 KB. Its attributes are built on each read and not kept;
 * exporters read them once per data point while serializing.
 */
export class RowIdentity {
  constructor(
    readonly ref: EndpointRef,
    readonly endpoint: LocalEndpoint,
    private readonly group: RowDescription,
    /** Flow-granularity rows only (undefined at pod granularity); the rest of the peer is numbers, kept inline. */
    readonly peerAddress: string | undefined,
    private readonly serverPort: number,
    private readonly protocol: number,
    private readonly family: number,
    readonly peerIdentity: PeerIdentity | undefined,
    readonly seriesKey: string,
  ) {}

  /** The group's own classification of the row, e.g. which statistic it is. */
  get tag(): string | undefined {
    return this.group.tag;
  }

  /** True for flow-granularity rows (they carry a peer). */
  get flow(): boolean {
    return this.peerAddress !== undefined;
  }

  /** Endpoint, peer and group attributes together (its parts merged); a new object on every read. */
  get attributes(): Attributes {
    return Object.assign({}, ...this.attributeParts());
  }

  /**
   * The attributes as parts, in merge order: endpoint, peer, peer identity,
   * group. The endpoint's, the peer identity's and the group's are frozen and
   * shared by many rows; only the peer's address part is the row's own.
   */
  attributeParts(): readonly Attributes[] {
    if (this.peerAddress === undefined) return [this.endpoint.attributes, this.group.attributes];
    const peer = peerAttributes(this.peerAddress, this.serverPort, this.protocol, this.family);
    return [this.endpoint.attributes, peer, this.peerIdentity?.attributes ?? NO_ATTRIBUTES, this.group.attributes];
  }
}

/** The identity a row is aggregated under (by the endpoint's keyId); shared with code that builds matching series (baselines). */
export function seriesKeyOf(endpointKey: string, peerKey: string | undefined, groupKey: string): string {
  // join() makes one flat string; a template literal leaves a tree of cons strings (about 250 bytes more per flow).
  return [endpointKey, peerKey ?? '', groupKey].join('|');
}

const NO_ATTRIBUTES: Attributes = Object.freeze({});
/** The key fields of the row at `keys[offset..]`, as describe() reads them. */
export function keyFieldView(keyFields: StructReader<string> | undefined, keys: Buffer, offset: number): KeyFieldView {
  const need = (): StructReader<string> => {
    if (!keyFields) throw new Error('the table was given no keyFields');
    return keyFields;
  };
  return {
    uint: (field) => need().uint(keys, offset, field),
    int: (field) => {
      const member = need().member(field);
      return member.size === 4 ? keys.readInt32LE(offset + member.offset) : need().uint(keys, offset, field);
    },
  };
}

/** The description of a row when the group has no describe (every row of an endpoint is one series). */
export const NO_GROUP: RowDescription = Object.freeze({ key: '', attributes: NO_ATTRIBUTES });

/** An endpoint ref as one number: the cgroup id above the 32-bit netns inode. */
export function refKey(ref: EndpointRef): bigint {
  return (ref.cgroupId << 32n) | BigInt(ref.netnsIno);
}

/**
 * Tracks how long endpoints (cgroups, netns) have been gone, to say when their
 * rows may be deleted. Keyed by endpoint, not by row: liveness is the
 * endpoint's, every row of it expires together, and no per-row identity has to
 * be built on the hot path. Call begin() before a collection and end() after
 * it; endpoints not seen in between are forgotten.
 */
export class GoneRows {
  private readonly since = new Map<bigint, number>();
  private readonly seen = new Set<bigint>();
  /**
   * Endpoints found live in this collection, by their shared ref object: a
   * pod's 10,000 flow rows ask once, not 10,000 times (each a BigInt-keyed
   * lookup in the cgroup index).
   */
  private readonly liveThisPass = new Set<EndpointRef>();

  constructor(
    private readonly attribution: CgroupAttribution,
    private readonly gracePeriodMs: number,
  ) {}

  begin(): void {
    this.seen.clear();
    this.liveThisPass.clear();
  }

  /** True once the row's endpoint has been gone for the grace period. */
  expired(ref: EndpointRef, endpoint: LocalEndpoint, now: number): boolean {
    if (this.liveThisPass.has(ref)) return false;
    // One key space: cgroup ids as they are, netns inodes (rows without a socket) negated.
    const key = ref.cgroupId !== 0n ? ref.cgroupId : -BigInt(ref.netnsIno);
    if (endpoint.kind !== 'unknown' && this.attribution.isLiveRef(ref)) {
      this.liveThisPass.add(ref);
      // Only endpoints that looked gone once (not yet indexed, say) have an entry to clear.
      if (this.since.size) this.since.delete(key);
      return false;
    }
    this.seen.add(key);
    const first = this.since.get(key);
    if (first === undefined) {
      this.since.set(key, now);
      return false;
    }
    return now - first >= this.gracePeriodMs;
  }

  /** Forgets endpoints whose rows are gone (deleted, or no longer in the map). */
  end(): void {
    for (const key of this.since.keys()) if (!this.seen.has(key)) this.since.delete(key);
  }
}
