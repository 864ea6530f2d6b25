/**
 * Who a kernel map row belongs to: its local endpoint, its peer (flow
 * granularity) and the group's own key fields, as one series identity and
 * one attribute set, for histogram tables. Counter tables keep their rows
 * in columns (counter-series.ts) and name them with the same functions
 * (seriesKeyOf, peerAttributes), so both name a row the same way.
 */
import type { Attributes } from '@opentelemetry/api';
import type { AnyLoadedObject } from '../bpf/object-names';
import { StructReader } from '../bpf/struct-reader';
import type { CgroupAttribution, EndpointRef, LocalEndpoint, PeerIdentity } from '../k8s/attribution';
import { EndpointKeyReader, peerAttributes, peerKeyOf } from './endpoint-key';

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

/** A cached map row. */
interface RowEntry {
  /** undefined: the group's describe skips the row (that depends on the key alone, so it never changes). */
  identity: RowIdentity | undefined;
  generation: number;
  seenIn: number;
  /** The row's key bytes as a latin1 string: its key in the cache. */
  rowId: string;
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

/** True when the key bytes at `offset` are those of `rowId` (a latin1 string of key bytes). */
function sameKey(rowId: string, keys: Buffer, offset: number): boolean {
  for (let i = rowId.length - 1; i >= 0; i--) if (rowId.charCodeAt(i) !== keys[offset + i]) return false;
  return true;
}

/** An endpoint ref as one number: the cgroup id above the 32-bit netns inode. */
export function refKey(ref: EndpointRef): bigint {
  return (ref.cgroupId << 32n) | BigInt(ref.netnsIno);
}

/**
 * Names map rows, caching each row's identity by its key bytes: a collection
 * of 100,000 flow rows must not resolve endpoints and peers and build series
 * keys for every row every time. A cached identity is rebuilt when its endpoint may
 * resolve differently (attribution's generation moved, or it was unknown)
 * or its peer's Kubernetes identity changed. Call begin() before reading a
 * map and end() after; rows not read in between are forgotten.
 */
export class RowIdentityReader {
  private readonly endpointKey: EndpointKeyReader;
  private readonly keyFields: StructReader<string> | undefined;
  private readonly keySize: number;
  private readonly cache = new Map<string, RowEntry>();
  /** Shared by every row of an endpoint (a pod's flows): one object per cgroup, not per row. */
  private readonly refs = new Map<bigint, EndpointRef>();
  /** Group descriptions by key: every row of a direction shares one. */
  private readonly groups = new Map<string, RowDescription>();
  /** Peer address strings, shared by the rows of one peer (a server's many client flows). */
  private readonly addresses = new Map<string, string>();
  private pass = 0;
  private readThisPass = 0;
  /**
   * Entries by their position in the last read and in this one. A map that
   * did not change returns its rows in the same order, so most rows are
   * found by comparing their key bytes with the entry at the same position,
   * without making the key string and hashing it (100,000 times a collection).
   */
  private lastByPosition: RowEntry[] = [];
  private byPosition: RowEntry[] = [];

  constructor(
    object: AnyLoadedObject,
    keyStruct: string,
    keyFields: readonly string[] | undefined,
    private readonly attribution: CgroupAttribution,
    private readonly describe?: DescribeRow,
  ) {
    const layout = object.structLayout(keyStruct);
    this.keySize = layout.size;
    this.endpointKey = new EndpointKeyReader(keyStruct, layout);
    this.keyFields = keyFields?.length ? new StructReader(keyStruct, layout, keyFields) : undefined;
  }

  begin(): void {
    this.pass++;
    this.readThisPass = 0;
  }

  /** Forgets rows not read since begin() (deleted from the map). */
  end(): void {
    const last = this.lastByPosition;
    this.lastByPosition = this.byPosition;
    last.length = 0;
    this.byPosition = last;
    if (this.cache.size <= this.readThisPass) return;
    for (const [rowId, row] of this.cache) if (row.seenIn !== this.pass) this.cache.delete(rowId);
    // Rows went away: keep only the shared objects that surviving rows still use.
    this.refs.clear();
    this.addresses.clear();
    for (const row of this.cache.values()) {
      const identity = row.identity;
      if (!identity) continue;
      this.refs.set(refKey(identity.ref), identity.ref);
      const address = identity.peerAddress;
      if (address !== undefined) this.addresses.set(address, address);
    }
  }

  /**
   * The identity of the row whose key is at `offset` in `keys`, the row at `position` in the walk of the map.
   * undefined when the group's describe skips the row. The identity is shared: do not modify it.
   */
  read(keys: Buffer, offset: number, position: number): RowIdentity | undefined {
    let row: RowEntry | undefined = this.lastByPosition[position];
    let rowId: string;
    if (row !== undefined && sameKey(row.rowId, keys, offset)) rowId = row.rowId;
    else {
      rowId = keys.toString('latin1', offset, offset + this.keySize);
      row = this.cache.get(rowId);
    }
    if (row === undefined || !this.current(row)) {
      row = this.build(keys, offset, rowId);
      this.cache.set(rowId, row);
    }
    this.byPosition[position] = row;
    if (row.seenIn !== this.pass) {
      row.seenIn = this.pass;
      this.readThisPass++;
    }
    return row.identity;
  }

  private current(row: RowEntry): boolean {
    if (!row.identity) return true;
    // Unknown endpoints are not cached by attribution either: their cgroup may be indexed by now.
    if (row.identity.endpoint.kind === 'unknown') return false;
    return row.generation === this.attribution.endpointGeneration && !row.identity.peerIdentity?.stale;
  }

  private build(keys: Buffer, offset: number, rowId: string): RowEntry {
    const generation = this.attribution.endpointGeneration;
    const group = this.describe ? this.describe(keyFieldView(this.keyFields, keys, offset)) : NO_GROUP;
    if (!group) return { identity: undefined, generation, seenIn: 0, rowId };
    const ref = this.shared(this.endpointKey.ref(keys, offset));
    const endpoint = this.attribution.resolveRef(ref);
    const peer = this.endpointKey.peerFields(keys, offset);
    let address: string | undefined;
    let peerIdentity: PeerIdentity | undefined;
    let peerKey: string | undefined;
    if (peer) {
      address = this.addresses.get(peer.address);
      if (address === undefined) this.addresses.set(peer.address, (address = peer.address));
      peerIdentity = this.attribution.peer(address);
      peerKey = peerKeyOf(address, peer.serverPort, peer.protocol);
    }
    const description = this.sharedGroup(group);
    const seriesKey = seriesKeyOf(endpoint.keyId, peerKey, description.key);
    const identity = new RowIdentity(
      ref,
      endpoint,
      description,
      address,
      peer?.serverPort ?? 0,
      peer?.protocol ?? 0,
      peer?.family ?? 0,
      peerIdentity,
      seriesKey,
    );
    return { identity, generation, seenIn: 0, rowId };
  }

  private shared(ref: EndpointRef): EndpointRef {
    const key = refKey(ref);
    const known = this.refs.get(key);
    if (known) return known;
    this.refs.set(key, ref);
    return ref;
  }

  private sharedGroup(group: RowDescription): RowDescription {
    const known = this.groups.get(group.key);
    if (known && known.tag === group.tag) return known;
    // Descriptions depend on the key fields alone, so one per group key; bounded by the group's key space.
    // Frozen: rows share it, and exporters cache its encoding (see RowIdentity.attributeParts).
    Object.freeze(group.attributes);
    this.groups.set(group.key, group);
    return group;
  }
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
