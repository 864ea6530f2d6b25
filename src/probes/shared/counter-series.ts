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
import type { CgroupAttribution, LocalEndpoint } from '../../k8s/attribution';
import type { EndpointKeyReader } from './endpoint-key';
import { PACKED_PEER_SIZE, peerAttributes, peerKeyOf } from './endpoint-key';
import { FixedKeySet } from './fixed-key-set';
import { seriesKeyOf, type RowDescription } from './row-identity';
import { formatAddress } from './tuple';

/*
 * A series key: the endpoint's id (one per LocalEndpoint.keyId), the group's
 * id (one per description key) and the packed peer (zeros without one).
 */
const ENDPOINT_AT = 0;
const GROUP_AT = 4;
const PEER_AT = 8;
const SERIES_KEY_SIZE = PEER_AT + PACKED_PEER_SIZE;
const NO_ATTRIBUTES: Attributes = Object.freeze({});

export class CounterSeriesStore {
  private readonly keys = new FixedKeySet(SERIES_KEY_SIZE);
  /** fieldCount totals per series. */
  private totals = new Float64Array(0);
  private touchedIn = new Int32Array(0);
  /** The last collection in which a row that stays in the kernel map counted into the series. */
  private liveIn = new Int32Array(0);
  /** [seconds, nanoseconds] of the series' start, per series. */
  private start = new Float64Array(0);
  /** The endpoint of the last row that counted into the series (its attributes may be newer than the key's). */
  private endpoints: LocalEndpoint[] = [];
  /** Peer address strings, shared by the series of one peer. */
  private addresses: Array<string | undefined> = [];
  private readonly addressStrings = new Map<string, string>();
  private readonly endpointIds = new Map<string, number>();
  private nextEndpointId = 1;
  private readonly scratch = Buffer.alloc(SERIES_KEY_SIZE);
  /** Series that begin in one collection share one start time. */
  private startOfThisPass: HrTime | undefined;

  constructor(
    readonly fieldCount: number,
    private readonly groups: readonly RowDescription[],
    private readonly endpointKey: EndpointKeyReader,
    private readonly attribution: CgroupAttribution,
  ) {}

  get size(): number {
    return this.keys.size;
  }

  /** Call before a collection touches series. */
  begin(): void {
    this.startOfThisPass = undefined;
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
    if (this.touchedIn.length < this.keys.capacity) this.resize(this.keys.capacity);
    this.totals.fill(0, slot * this.fieldCount, (slot + 1) * this.fieldCount);
    this.touchedIn[slot] = 0;
    this.liveIn[slot] = 0;
    const start = (this.startOfThisPass ??= hrTime());
    this.start[slot * 2] = start[0];
    this.start[slot * 2 + 1] = start[1];
    this.endpoints[slot] = endpoint;
    this.addresses[slot] = family === 0 ? undefined : this.sharedAddress(formatAddress(key.subarray(PEER_AT + 4, PEER_AT + PACKED_PEER_SIZE)));
    return slot;
  }

  /** True the first time `pass` touches the series: its totals are then zeroed, to be summed again. */
  touch(slot: number, pass: number): boolean {
    if (this.touchedIn[slot] === pass) return false;
    this.touchedIn[slot] = pass;
    // A loop, not fill(): a call into C++ per series costs more than two stores.
    for (let at = slot * this.fieldCount, end = at + this.fieldCount; at < end; at++) this.totals[at] = 0;
    return true;
  }

  add(slot: number, field: number, value: number): void {
    this.totals[slot * this.fieldCount + field] += value;
  }

  total(slot: number, field: number): number {
    return this.totals[slot * this.fieldCount + field];
  }

  setEndpoint(slot: number, endpoint: LocalEndpoint): void {
    this.endpoints[slot] = endpoint;
  }

  markLive(slot: number, pass: number): void {
    this.liveIn[slot] = pass;
  }

  liveInPass(slot: number, pass: number): boolean {
    return this.liveIn[slot] === pass;
  }

  endpoint(slot: number): LocalEndpoint {
    return this.endpoints[slot];
  }

  isFlow(slot: number): boolean {
    return this.addresses[slot] !== undefined;
  }

  tag(slot: number): string | undefined {
    return this.group(slot).tag;
  }

  startTime(slot: number): HrTime {
    return [this.start[slot * 2], this.start[slot * 2 + 1]];
  }

  /** The key the series is aggregated and exported under (see seriesKeyOf); made on each call. */
  seriesKey(slot: number): string {
    const address = this.addresses[slot];
    const keys = this.keys.bytes;
    const at = this.keys.offsetOf(slot) + PEER_AT;
    const peerKey = address === undefined ? undefined : peerKeyOf(address, keys.readUInt16LE(at), keys[at + 2]);
    return seriesKeyOf(this.endpoints[slot].keyId, peerKey, this.group(slot).key);
  }

  /**
   * The attributes as parts, in merge order: endpoint, peer, peer identity,
   * group. The endpoint's, the peer identity's and the group's are frozen and
   * shared by many series (an exporter encodes those once); the peer's own is
   * made on each call.
   */
  attributeParts(slot: number): readonly Attributes[] {
    const endpoint = this.endpoints[slot];
    const group = this.group(slot);
    const address = this.addresses[slot];
    if (address === undefined) return [endpoint.attributes, group.attributes];
    const keys = this.keys.bytes;
    const at = this.keys.offsetOf(slot) + PEER_AT;
    const peer = peerAttributes(address, keys.readUInt16LE(at), keys[at + 2], keys[at + 3]);
    return [endpoint.attributes, peer, this.attribution.peer(address).attributes ?? NO_ATTRIBUTES, group.attributes];
  }

  /**
   * Drops every series not touched in `pass` and moves the others down;
   * returns where each old slot went (-1: dropped), for the caller's own
   * references to series.
   */
  compact(pass: number): Int32Array {
    const moved = this.keys.compact((slot) => this.touchedIn[slot] === pass);
    const fields = this.fieldCount;
    for (let slot = 0; slot < moved.length; slot++) {
      const to = moved[slot];
      if (to < 0 || to === slot) continue;
      this.totals.copyWithin(to * fields, slot * fields, (slot + 1) * fields);
      this.touchedIn[to] = this.touchedIn[slot];
      this.liveIn[to] = this.liveIn[slot];
      this.start[to * 2] = this.start[slot * 2];
      this.start[to * 2 + 1] = this.start[slot * 2 + 1];
      this.endpoints[to] = this.endpoints[slot];
      this.addresses[to] = this.addresses[slot];
    }
    this.endpoints.length = this.keys.size;
    this.addresses.length = this.keys.size;
    if (this.touchedIn.length > this.keys.capacity) this.resize(this.keys.capacity);
    this.forgetUnusedIds();
    return moved;
  }

  private group(slot: number): RowDescription {
    return this.groups[this.keys.bytes.readUInt32LE(this.keys.offsetOf(slot) + GROUP_AT)];
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
    for (const address of this.addresses) if (address !== undefined) this.addressStrings.set(address, address);
  }

  private resize(capacity: number): void {
    this.totals = resized(this.totals, capacity * this.fieldCount);
    this.touchedIn = resized(this.touchedIn, capacity);
    this.liveIn = resized(this.liveIn, capacity);
    this.start = resized(this.start, capacity * 2);
  }
}

/** A copy of `array` with `length` elements (cut, or zero-filled). */
export function resized<T extends Int32Array | Float64Array>(array: T, length: number): T {
  const next = new (array.constructor as new (length: number) => T)(length);
  next.set(array.length > length ? array.subarray(0, length) : array);
  return next;
}
