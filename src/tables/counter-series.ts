/**
 * The series of a counter table, in typed-array columns: their identity
 * (local endpoint, group, peer) as fixed-size keys, their running totals,
 * when each began and in which collection each was last touched.
 *
 * At flow granularity a series is a flow, and 100,000 flows as objects (an
 * accumulator, a totals record, a series-key string and a map entry each)
 * were about 300 bytes each on the JavaScript heap. Here a series is about
 * 100 bytes, most of it outside the heap; its attributes, its series key and
 * its totals record are made only when an exporter reads it.
 */
import type { Attributes, HrTime } from '@opentelemetry/api';
import { hrTime } from '@opentelemetry/core';
import type { CgroupAttribution, LocalEndpoint } from '../k8s/attribution';
import type { EndpointKeyReader } from './endpoint-key';
import { PACKED_PEER_SIZE, peerAttributes, peerKeyOf } from './endpoint-key';
import { FixedKeySet } from './fixed-key-set';
import { seriesKeyOf, type RowDescription } from './row-identity';
import { formatAddress } from '../bpf/tuple';

/*
 * A series key: the endpoint's id (one per LocalEndpoint.keyId), the group's
 * id (one per description key) and the packed peer (zeros without one).
 */
const ENDPOINT_AT = 0;
const GROUP_AT = 4;
const PEER_AT = 8;
const SERIES_KEY_SIZE = PEER_AT + PACKED_PEER_SIZE;
const NO_ATTRIBUTES: Attributes = Object.freeze({});

/**
 * Every column of the series, by slot. What an exporter reads goes through
 * one of these: a collection's series (CounterRows) keep the columns they
 * were made from. The store never moves a series within a columns object:
 * it grows and compacts into new ones, so series read after the next
 * collection (an export still being sent when the next one starts, a
 * Prometheus scrape in between) still read their own series, with totals
 * no older than that collection's.
 */
export class SeriesColumns {
  readonly totals: Float64Array;
  readonly touchedIn: Int32Array;
  /** The last collection in which a row that stays in the kernel map counted into the series. */
  readonly liveIn: Int32Array;
  /** [seconds, nanoseconds] of the series' start. */
  readonly start: Float64Array;
  readonly group: Int32Array;
  readonly serverPort: Uint16Array;
  readonly protocol: Uint8Array;
  /** The address family of the first row of a flow series (the peer attributes' network type); 0: no peer. */
  readonly family: Uint8Array;
  /** The endpoint of the last row that counted into the series (its attributes may be newer than the key's). */
  readonly endpoints: LocalEndpoint[];
  /** Peer address strings, shared by the series of one peer. */
  readonly addresses: Array<string | undefined>;

  /** The typed-array columns, each with its width in elements per series: growing copies through this list (see copyMoved). */
  private readonly numeric: ReadonlyArray<readonly [Float64Array | Int32Array | Uint16Array | Uint8Array, number]>;

  /** Empty columns of `capacity`, or (`from`) a copy of every series of smaller ones. */
  constructor(
    readonly capacity: number,
    readonly fieldCount: number,
    private readonly groups: readonly RowDescription[],
    private readonly attribution: CgroupAttribution,
    from?: SeriesColumns,
  ) {
    this.totals = new Float64Array(capacity * fieldCount);
    this.touchedIn = new Int32Array(capacity);
    this.liveIn = new Int32Array(capacity);
    this.start = new Float64Array(capacity * 2);
    this.group = new Int32Array(capacity);
    this.serverPort = new Uint16Array(capacity);
    this.protocol = new Uint8Array(capacity);
    this.family = new Uint8Array(capacity);
    this.numeric = [
      [this.totals, fieldCount],
      [this.touchedIn, 1],
      [this.liveIn, 1],
      [this.start, 2],
      [this.group, 1],
      [this.serverPort, 1],
      [this.protocol, 1],
      [this.family, 1],
    ];
    this.endpoints = from ? from.endpoints.slice() : [];
    this.addresses = from ? from.addresses.slice() : [];
    if (from) this.numeric.forEach(([column], c) => column.set(from.numeric[c][0]));
  }

  /**
   * Copies every series of `source` that `moved` keeps (moved[old slot] is its new slot, -1: dropped). Each column
   * by name, not through `numeric`: through that list a compaction of 100,000 series took 14.4 ms against 3.9 with
   * one series dropped, 7.3 against 2.2 with every other one (warmed up, median of 15). A column added to `numeric`
   * must be added here too: the attribution compaction test fails when any column but touchedIn and liveIn is left
   * out (those two the next collection sets again before anything reads them).
   */
  copyMoved(source: SeriesColumns, moved: Int32Array): void {
    const fields = this.fieldCount;
    for (let from = 0; from < moved.length; from++) {
      const to = moved[from];
      if (to < 0) continue;
      for (let f = 0; f < fields; f++) this.totals[to * fields + f] = source.totals[from * fields + f];
      this.touchedIn[to] = source.touchedIn[from];
      this.liveIn[to] = source.liveIn[from];
      this.start[to * 2] = source.start[from * 2];
      this.start[to * 2 + 1] = source.start[from * 2 + 1];
      this.group[to] = source.group[from];
      this.serverPort[to] = source.serverPort[from];
      this.protocol[to] = source.protocol[from];
      this.family[to] = source.family[from];
      this.endpoints[to] = source.endpoints[from];
      this.addresses[to] = source.addresses[from];
    }
  }

  total(slot: number, field: number): number {
    return this.totals[slot * this.fieldCount + field];
  }

  isFlow(slot: number): boolean {
    return this.addresses[slot] !== undefined;
  }

  tag(slot: number): string | undefined {
    return this.groups[this.group[slot]].tag;
  }

  startTime(slot: number): HrTime {
    return [this.start[slot * 2], this.start[slot * 2 + 1]];
  }

  /** The key the series is aggregated and exported under (see seriesKeyOf); made on each call. */
  seriesKey(slot: number): string {
    const address = this.addresses[slot];
    const peerKey = address === undefined ? undefined : peerKeyOf(address, this.serverPort[slot], this.protocol[slot]);
    return seriesKeyOf(this.endpoints[slot].keyId, peerKey, this.groups[this.group[slot]].key);
  }

  /**
   * The attributes as parts, in merge order: endpoint, peer, peer identity,
   * group. The endpoint's, the peer identity's and the group's are frozen and
   * shared by many series (an exporter encodes those once); the peer's own is
   * made on each call, and its Kubernetes identity looked up then (it may
   * have changed since the series began).
   */
  attributeParts(slot: number): readonly Attributes[] {
    const endpoint = this.endpoints[slot];
    const group = this.groups[this.group[slot]];
    const address = this.addresses[slot];
    if (address === undefined) return [endpoint.attributes, group.attributes];
    const peer = peerAttributes(address, this.serverPort[slot], this.protocol[slot], this.family[slot]);
    return [endpoint.attributes, peer, this.attribution.peer(address).attributes ?? NO_ATTRIBUTES, group.attributes];
  }
}

export class CounterSeriesStore {
  private readonly keys = new FixedKeySet(SERIES_KEY_SIZE);
  private cols: SeriesColumns;
  private readonly addressStrings = new Map<string, string>();
  private readonly endpointIds = new Map<string, number>();
  private nextEndpointId = 1;
  private readonly scratch = Buffer.alloc(SERIES_KEY_SIZE);
  /** Series that begin in one collection share one start time. */
  private startOfThisPass: HrTime | undefined;
  /** The columns at the start of this collection: series of earlier collections may read them. */
  private passColumns: SeriesColumns | undefined;

  constructor(
    readonly fieldCount: number,
    private readonly groups: readonly RowDescription[],
    private readonly endpointKey: EndpointKeyReader,
    private readonly attribution: CgroupAttribution,
  ) {
    this.cols = new SeriesColumns(this.keys.capacity, fieldCount, groups, attribution);
  }

  get size(): number {
    return this.keys.size;
  }

  /** The columns as they are now: what this collection's series are read from. */
  get columns(): SeriesColumns {
    return this.cols;
  }

  /** Call before a collection touches series. */
  begin(): void {
    this.startOfThisPass = undefined;
    this.passColumns = this.cols;
  }

  /** The series of a row (key bytes at `offset`) of `endpoint` and group `group`, created on first use. */
  seriesOf(rowKeys: Buffer, offset: number, endpoint: LocalEndpoint, group: number): number {
    const key = this.scratch;
    key.writeUInt32LE(this.endpointId(endpoint.keyId), ENDPOINT_AT);
    key.writeUInt32LE(group, GROUP_AT);
    const family = this.endpointKey.packPeer(rowKeys, offset, key, PEER_AT);
    const found = this.keys.find(key, 0);
    if (found >= 0) return found;
    const slot = this.keys.add(key, 0);
    if (this.cols.capacity < this.keys.capacity) this.cols = new SeriesColumns(this.keys.capacity, this.fieldCount, this.groups, this.attribution, this.cols);
    const cols = this.cols;
    cols.totals.fill(0, slot * this.fieldCount, (slot + 1) * this.fieldCount);
    cols.touchedIn[slot] = 0;
    cols.liveIn[slot] = 0;
    const start = (this.startOfThisPass ??= hrTime());
    cols.start[slot * 2] = start[0];
    cols.start[slot * 2 + 1] = start[1];
    cols.group[slot] = group;
    cols.serverPort[slot] = key.readUInt16LE(PEER_AT);
    cols.protocol[slot] = key[PEER_AT + 2];
    cols.family[slot] = family;
    cols.endpoints[slot] = endpoint;
    cols.addresses[slot] = family === 0 ? undefined : this.sharedAddress(formatAddress(key.subarray(PEER_AT + 4, PEER_AT + PACKED_PEER_SIZE)));
    return slot;
  }

  /** True the first time `pass` touches the series: its totals are then zeroed, to be summed again. */
  touch(slot: number, pass: number): boolean {
    const cols = this.cols;
    if (cols.touchedIn[slot] === pass) return false;
    cols.touchedIn[slot] = pass;
    // A loop, not fill(): a call into C++ per series costs more than two stores.
    for (let at = slot * this.fieldCount, end = at + this.fieldCount; at < end; at++) cols.totals[at] = 0;
    return true;
  }

  add(slot: number, field: number, value: number): void {
    this.cols.totals[slot * this.fieldCount + field] += value;
  }

  setEndpoint(slot: number, endpoint: LocalEndpoint): void {
    this.cols.endpoints[slot] = endpoint;
  }

  markLive(slot: number, pass: number): void {
    this.cols.liveIn[slot] = pass;
  }

  liveInPass(slot: number, pass: number): boolean {
    return this.cols.liveIn[slot] === pass;
  }

  endpoint(slot: number): LocalEndpoint {
    return this.cols.endpoints[slot];
  }

  isFlow(slot: number): boolean {
    return this.cols.isFlow(slot);
  }

  /**
   * Call when a collection has summed every row (before compact()). Columns
   * it outgrew were left with the totals of the rows summed before they were
   * replaced: a series of several rows would read lower there than it was.
   */
  end(touched: Int32Array, count: number): void {
    // Columns grown in between (the first collection of many new flows doubles them often) are read by nothing else.
    const old = this.passColumns;
    if (old && old !== this.cols) {
      for (let i = 0; i < count; i++) {
        const slot = touched[i];
        if (slot >= old.capacity) continue;
        for (let f = 0; f < this.fieldCount; f++) old.totals[slot * this.fieldCount + f] = this.cols.total(slot, f);
      }
    }
    this.passColumns = undefined;
  }

  /**
   * Drops every series not touched in `pass`; returns where each old slot
   * went (-1: dropped), for the caller's own references to series. The
   * survivors go to new columns: series of earlier collections keep reading
   * the old ones.
   */
  compact(pass: number): Int32Array {
    const touchedIn = this.cols.touchedIn;
    const moved = this.keys.compact((slot) => touchedIn[slot] === pass);
    const from = this.cols;
    const to = new SeriesColumns(this.keys.capacity, this.fieldCount, this.groups, this.attribution);
    to.copyMoved(from, moved);
    this.cols = to;
    this.forgetUnusedIds();
    return moved;
  }

  private endpointId(keyId: string): number {
    let id = this.endpointIds.get(keyId);
    if (id === undefined) this.endpointIds.set(keyId, (id = this.nextEndpointId++));
    return id;
  }

  private sharedAddress(address: string): string {
    const known = this.addressStrings.get(address);
    if (known !== undefined) return known;
    this.addressStrings.set(address, address);
    return address;
  }

  /** Endpoint ids and address strings that no remaining series uses (pods and peers gone) are forgotten. */
  private forgetUnusedIds(): void {
    const usedIds = new Set<number>();
    const keys = this.keys.bytes;
    for (let slot = 0; slot < this.keys.size; slot++) usedIds.add(keys.readUInt32LE(this.keys.offsetOf(slot) + ENDPOINT_AT));
    for (const [keyId, id] of this.endpointIds) if (!usedIds.has(id)) this.endpointIds.delete(keyId);
    this.addressStrings.clear();
    for (const address of this.cols.addresses) if (address !== undefined) this.addressStrings.set(address, address);
  }
}
