/**
 * Who a kernel map row belongs to: its local endpoint, its peer (flow
 * granularity) and the group's own key fields, as one series identity and
 * one attribute set. Shared by counter tables and histogram tables so both
 * name a row the same way.
 */
import type { Attributes } from '@opentelemetry/api';
import type { NativeBpfObject } from '../../bpf/native';
import { StructReader } from '../../bpf/struct-reader';
import type { CgroupAttribution, EndpointRef, LocalEndpoint, PeerIdentity } from '../../k8s/attribution';
import { EndpointKeyReader } from './endpoint-key';

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

export interface RowIdentity {
  ref: EndpointRef;
  endpoint: LocalEndpoint;
  tag?: string;
  seriesKey: string;
  attributes: Attributes;
  /** True for flow-granularity rows (they carry a peer). */
  flow: boolean;
}

/** The identity a row is aggregated under; shared with code that builds matching series (baselines). */
export function seriesKeyOf(endpointKey: string, peerKey: string | undefined, groupKey: string): string {
  return `${endpointKey}|${peerKey ?? ''}|${groupKey}`;
}

/**
 * A cached map row. `state` belongs to the table reading the map (running
 * per-row state, found with the same single lookup); it survives a rebuild
 * of the identity, so the table compares `state`'s own record of the
 * identity it was set up for.
 */
export interface RowEntry<S> {
  /** undefined: the group's describe skips the row (that depends on the key alone, so it never changes). */
  identity: RowIdentity | undefined;
  state: S | undefined;
  generation: number;
  peer: PeerIdentity | undefined;
  seenIn: number;
}

/**
 * Names map rows, caching each row's identity by its key bytes: a collection
 * of 100,000 flow rows must not resolve, format and merge attributes for
 * every row every time. A cached identity is rebuilt when its endpoint may
 * resolve differently (attribution's generation moved, or it was unknown)
 * or its peer's Kubernetes identity changed. Call begin() before reading a
 * map and end() after; rows not read in between are forgotten.
 */
export class RowIdentityReader<S = never> {
  private readonly endpointKey: EndpointKeyReader;
  private readonly keyFields: StructReader<string> | undefined;
  private readonly keySize: number;
  private readonly cache = new Map<string, RowEntry<S>>();
  private pass = 0;
  private readThisPass = 0;

  constructor(
    object: NativeBpfObject,
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
    if (this.cache.size <= this.readThisPass) return;
    for (const [rowId, row] of this.cache) if (row.seenIn !== this.pass) this.cache.delete(rowId);
  }

  /** undefined when the group's describe skips the row. The identity is shared: do not modify it. */
  read(keys: Buffer, offset: number): RowIdentity | undefined {
    return this.entry(keys, offset).identity;
  }

  /** The row's cache entry: its identity and the caller's per-row state. */
  entry(keys: Buffer, offset: number): RowEntry<S> {
    const rowId = keys.toString('latin1', offset, offset + this.keySize);
    let row = this.cache.get(rowId);
    if (row === undefined || !this.current(row)) {
      row = this.build(keys, offset, row?.state);
      this.cache.set(rowId, row);
    }
    if (row.seenIn !== this.pass) {
      row.seenIn = this.pass;
      this.readThisPass++;
    }
    return row;
  }

  private current(row: RowEntry<S>): boolean {
    if (!row.identity) return true;
    // Unknown endpoints are not cached by attribution either: their cgroup may be indexed by now.
    if (row.identity.endpoint.kind === 'unknown') return false;
    return row.generation === this.attribution.endpointGeneration && !row.peer?.stale;
  }

  private build(keys: Buffer, offset: number, state: S | undefined): RowEntry<S> {
    const generation = this.attribution.endpointGeneration;
    const group: RowDescription | undefined = this.describe ? this.describe(this.fieldView(keys, offset)) : { key: '', attributes: {} };
    if (!group) return { identity: undefined, state, generation, peer: undefined, seenIn: 0 };
    const ref = this.endpointKey.ref(keys, offset);
    const endpoint = this.attribution.resolveRef(ref);
    const peer = this.endpointKey.peer(keys, offset);
    const peerIdentity = peer ? this.attribution.peer(peer.address) : undefined;
    const identity: RowIdentity = {
      ref,
      endpoint,
      ...(group.tag !== undefined ? { tag: group.tag } : {}),
      seriesKey: seriesKeyOf(endpoint.key, peer?.key, group.key),
      attributes: Object.freeze({
        ...endpoint.attributes,
        ...peer?.attributes,
        ...peerIdentity?.attributes,
        ...group.attributes,
      }),
      flow: peer !== undefined,
    };
    return { identity, state, generation, peer: peerIdentity, seenIn: 0 };
  }

  private fieldView(keys: Buffer, offset: number): KeyFieldView {
    const need = (): StructReader<string> => {
      if (!this.keyFields) throw new Error('the table was given no keyFields');
      return this.keyFields;
    };
    return {
      uint: (field) => need().uint(keys, offset, field),
      int: (field) => {
        const member = need().member(field);
        return member.size === 4 ? keys.readInt32LE(offset + member.offset) : need().uint(keys, offset, field);
      },
    };
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

  constructor(
    private readonly attribution: CgroupAttribution,
    private readonly gracePeriodMs: number,
  ) {}

  begin(): void {
    this.seen.clear();
  }

  /** True once the row's endpoint has been gone for the grace period. */
  expired(ref: EndpointRef, endpoint: LocalEndpoint, now: number): boolean {
    // One key space: cgroup ids as they are, netns inodes (rows without a socket) negated.
    const key = ref.cgroupId !== 0n ? ref.cgroupId : -BigInt(ref.netnsIno);
    if (endpoint.kind !== 'unknown' && this.attribution.isLiveRef(ref)) {
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
