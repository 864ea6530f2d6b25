/**
 * Reads a per-CPU hash whose key starts with (or embeds) struct
 * flowtel_endpoint_key and whose value is u64/s64 counters, and turns it into
 * running totals per series: local endpoint × peer (flow granularity) × the
 * group's own key fields (reason, direction, ...). Rows sharing a series are
 * summed (every non-pod cgroup is "the node").
 *
 * Housekeeping, so kernel maps never fill up with the dead:
 * - rows of cgroups/netns gone for longer than the grace period are deleted;
 *   a shared series (node, unknown) keeps their totals so it never goes back;
 * - flow rows idle for longer than `idleFlowEvictMs` are deleted and their
 *   series ends.
 */
import type { Attributes, HrTime } from '@opentelemetry/api';
import type { MapRows, StructLayoutInfo } from '../bpf/native';
import type { LoadedObject, ObjectNames } from '../bpf/object-names';
import { MapRowsReader } from '../bpf/map-rows-reader';
import { StructReader, sumPerCpu } from '../bpf/struct-reader';
import type { CgroupAttribution, EndpointRef, LocalEndpoint } from '../k8s/attribution';
import type { AttributeParts } from './series';
import { CounterSeriesStore, type SeriesColumns } from './counter-series';
import { EndpointKeyReader } from './endpoint-key';
import { FixedKeySet } from './fixed-key-set';
import { GoneRows, keyFieldView, NO_GROUP, refKey, type DescribeRow, type RowDescription } from './row-identity';

export interface SeriesTotals<F extends string> extends AttributeParts {
  readonly endpoint: LocalEndpoint;
  /** The group's own classification of the row (from describe), e.g. which statistic it is. */
  readonly tag?: string;
  /** Same identity the table aggregates by: endpoint, peer and group key. */
  readonly seriesKey: string;
  /** Endpoint, peer and group attributes together. */
  readonly attributes: Attributes;
  readonly totals: Record<F, number>;
  /** One total by the field's index in the table's `fields` (no record made). */
  total(field: number): number;
  /** When this series began accumulating (its rows may be older: a series ends and restarts with its pod's metadata). */
  readonly startTime: HrTime;
}

/** The series of one collection, each made when read; valid until the table's next collect(). */
export interface CounterRows<F extends string> extends Iterable<SeriesTotals<F>> {
  readonly length: number;
  readonly fields: readonly F[];
  at(index: number): SeriesTotals<F>;
}

/** `N`: the names of the object (generated from its BTF), which tsc checks the map and struct names against. */
export interface EndpointCounterTableOptions<F extends string, N extends ObjectNames = ObjectNames> {
  object: LoadedObject<N>;
  mapName: N['maps'];
  keyStruct: N['structs'];
  /**
   * Value struct with u64 members `fields` (an element of a u64 array member
   * is named `member[i]`); omit when the value is one scalar (then fields = ['value']).
   */
  valueStruct?: N['structs'];
  fields: readonly F[];
  /** Values are s64 deltas (may sum below zero per CPU). */
  signed?: boolean;
  /** Other key members the group needs, e.g. ['reason', 'direction']. */
  keyFields?: readonly string[];
  /** Group attributes for a row from its key fields; undefined skips the row. */
  describe?: DescribeRow;
  attribution: CgroupAttribution;
  possibleCpus: number;
  gracePeriodMs: number;
  /** A flow row whose counters have not moved for this long is deleted (its series ends); absent: never. */
  idleFlowEvictMs?: number;
  /** Fields that count what exists now (live sockets): a flow row with any of them non-zero is never idle. */
  liveFields?: readonly F[];
  now?: () => number;
}

/** A kernel row to delete: its endpoint is gone, or (a flow) it has been idle. */
interface ExpiredRow {
  ref: EndpointRef;
  series: number;
  gone: boolean;
  totals: number[];
}

/** What one collection carries from row to row. */
interface Collection {
  now: number;
  generation: number;
  /** Scratch: the fields of the row being summed. */
  values: number[];
  /** Rows to delete from the map once the read is done (deleting while walking would skip rows). */
  expiredKeys: Buffer[];
  expiredRows: ExpiredRow[];
}

/** An endpoint ref of the table's rows, and its endpoint as resolved in `generation` (unknown: again each collection). */
interface RefEntry {
  readonly ref: EndpointRef;
  readonly key: bigint;
  endpoint: LocalEndpoint;
  generation: number;
  checkedIn: number;
}

/** Rows the tables' columns start with. */
const INITIAL_ROWS = 64;

export class EndpointCounterTable<F extends string, N extends ObjectNames = ObjectNames> {
  private readonly reader: MapRowsReader;
  /** Bytes between one CPU's value of a row and the next one's. */
  private readonly perCpuStride: number;
  /** Values per row: the possible CPUs for a per-CPU map, else 1. */
  private readonly cpus: number;
  private readonly gone: GoneRows;
  private readonly endpointKey: EndpointKeyReader;
  private readonly keyFields: StructReader<string> | undefined;
  private readonly valueOffsets: number[];
  /** By field index: whether it is one of `liveFields`. */
  private readonly isLiveField: boolean[];
  private readonly series: CounterSeriesStore;
  private readonly now: () => number;
  private pass = 0;

  /*
   * The kernel rows, by their key bytes, and each row's state in columns
   * indexed by its slot (see FixedKeySet).
   */
  private readonly rowKeys: FixedKeySet;
  /** The row's series; -1 until named. */
  private rowSeries = new Int32Array(INITIAL_ROWS);
  /** The row's group (an index into `groups`); -1: describe skips the row, which depends on the key alone. */
  private rowGroup = new Int32Array(INITIAL_ROWS);
  /** The attribution generation the row's series was named in: a newer one may name its endpoint differently. */
  private rowGeneration = new Int32Array(INITIAL_ROWS);
  private rowSeenIn = new Int32Array(INITIAL_ROWS);
  /** The row's endpoint ref (an index into `refs`). */
  private rowRef = new Int32Array(INITIAL_ROWS);
  /** Sum of the row's counters at `rowChangedAt`: a flow row that stops moving is evicted when idle. */
  private rowActivity = new Float64Array(INITIAL_ROWS);
  private rowChangedAt = new Float64Array(INITIAL_ROWS);
  /**
   * Row slots by their position in the last read and in this one. A map that
   * did not change returns its rows in the same order, so most rows are found
   * by comparing their key bytes with the row at the same position, without
   * hashing them (100,000 times a collection).
   */
  private lastByPosition = new Int32Array(0);
  private lastCount = 0;
  private byPosition = new Int32Array(0);

  /** Endpoint refs, one per cgroup (or netns) that has rows, with their endpoint as last resolved; rows hold their index. */
  private refs: RefEntry[] = [];
  private refIds = new Map<bigint, number>();

  /** Group descriptions, by id: bounded by the group's key space (directions, reasons). */
  private readonly groups: RowDescription[] = [];
  private readonly groupIds = new Map<string, number>();

  /**
   * Totals of deleted rows, by series, so a series never goes backwards while
   * it lasts: rows of the node's many cgroups share a series, and one of them
   * may be deleted (its cgroup gone, its flow idle) while others still count.
   * `forever`: the node's (or unknown) series at pod granularity never ends.
   */
  private retired = new Map<number, { totals: number[]; forever: boolean }>();
  /** Series touched by the current collection, in order: what collect() returns. */
  private touched = new Int32Array(INITIAL_ROWS);
  private touchedCount = 0;

  constructor(private readonly options: EndpointCounterTableOptions<F, N>) {
    const { object } = options;
    const layout = object.structLayout(options.keyStruct);
    this.rowKeys = new FixedKeySet(layout.size, INITIAL_ROWS);
    this.endpointKey = new EndpointKeyReader(options.keyStruct, layout);
    this.keyFields = options.keyFields?.length ? new StructReader(options.keyStruct, layout, options.keyFields) : undefined;
    this.reader = new MapRowsReader(object, options.mapName);
    // A map shared by all CPUs (updated atomically) holds one value per row.
    this.cpus = this.reader.perCpu ? options.possibleCpus : 1;
    this.perCpuStride = this.reader.valueStride / this.cpus;
    this.gone = new GoneRows(options.attribution, options.gracePeriodMs);
    if (options.valueStruct) {
      const valueLayout = object.structLayout(options.valueStruct);
      this.valueOffsets = options.fields.map((f) => counterOffset(options.valueStruct!, valueLayout, f));
    } else {
      if (options.fields.length !== 1) throw new Error(`${options.mapName}: a scalar value has exactly one field`);
      this.valueOffsets = [0];
    }
    this.isLiveField = options.fields.map((f) => options.liveFields?.includes(f) ?? false);
    this.series = new CounterSeriesStore(options.fields.length, this.groups, this.endpointKey, options.attribution);
    this.now = options.now ?? Date.now;
  }

  /**
   * Current totals per series, made one at a time when read. They stay this
   * collection's after the next one (an export still in flight reads them):
   * see SeriesColumns.
   */
  collect(): CounterRows<F> {
    const { fields } = this.options;
    const series = this.series;
    const pass = ++this.pass;
    const collection: Collection = {
      now: this.now(),
      generation: this.options.attribution.endpointGeneration,
      values: new Array<number>(fields.length),
      expiredKeys: [],
      expiredRows: [],
    };
    this.touchedCount = 0;
    series.begin();
    this.gone.begin();

    for (const [slot, kept] of this.retired) {
      this.touch(slot);
      for (let f = 0; f < fields.length; f++) series.add(slot, f, kept.totals[f]);
    }
    // The map is read in batches through small Buffers: its rows are summed as they come.
    const count = this.reader.forEach((rows, first) => {
      if (this.byPosition.length < first + rows.count) this.byPosition = resized(this.byPosition, Math.max(INITIAL_ROWS, (first + rows.count) * 2));
      for (let i = 0; i < rows.count; i++) this.sumRow(rows, i, first + i, collection);
    });
    this.gone.end();
    series.end(this.touched, this.touchedCount);
    if (collection.expiredKeys.length) this.retire(collection.expiredKeys, collection.expiredRows);
    // A series ends when its last row is deleted (a pod's, an idle flow's).
    for (const [slot, kept] of this.retired) if (!kept.forever && !series.liveInPass(slot, pass)) this.retired.delete(slot);
    this.forgetUnseenRows(count);
    if (series.size > this.touchedCount) this.forgetUntouchedSeries();
    // Its own copy of the slots: series read after the next collection still read this one's (see SeriesColumns).
    return new CounterRowsView<F>(fields, series.columns, this.touched.slice(0, this.touchedCount));
  }

  /** Adds row `i` of a batch (`position` in the whole read) into its series, and notes it for deletion when it expired. */
  private sumRow(rows: MapRows, i: number, position: number, collection: Collection): void {
    const { fields, idleFlowEvictMs, signed } = this.options;
    const possibleCpus = this.cpus;
    const { now, generation, values } = collection;
    const perCpuStride = this.perCpuStride;
    const series = this.series;
    const keyOffset = i * rows.keySize;
    const row = this.rowAt(position, rows.keys, keyOffset, now);
    const group = this.rowGroup[row];
    if (group < 0) return;
    const ref = this.rowRef[row];
    const endpoint = this.endpointOf(ref, generation);
    let slot = this.rowSeries[row];
    // Named again when the endpoint may resolve differently: a new generation, or it was unknown (rowGeneration -1).
    if (slot < 0 || this.rowGeneration[row] !== generation) {
      slot = this.rowSeries[row] = series.seriesOf(rows.keys, keyOffset, endpoint, group);
      // An unknown endpoint is not cached by attribution either: its cgroup may be indexed by the next collection.
      this.rowGeneration[row] = endpoint.kind === 'unknown' ? -1 : generation;
    }
    this.touch(slot);
    series.setEndpoint(slot, endpoint);
    let activity = 0;
    let holdsLive = false;
    for (let f = 0; f < fields.length; f++) {
      const value = sumPerCpu(rows.values, i * rows.valueStride + this.valueOffsets[f], possibleCpus, perCpuStride, signed);
      values[f] = value;
      series.add(slot, f, value);
      activity += Math.abs(value);
      if (value !== 0 && this.isLiveField[f]) holdsLive = true;
    }
    const gone = this.gone.expired(this.refs[ref].ref, endpoint, now);
    // A row counting live sockets must stay: deleted, the socket's later close would start a new series below zero.
    const idle = idleFlowEvictMs !== undefined && series.isFlow(slot) && this.idleFor(row, activity, now) >= idleFlowEvictMs && !holdsLive;
    if (gone || idle) {
      // A copy: the next batch overwrites the Buffer.
      collection.expiredKeys.push(Buffer.from(rows.keys.subarray(keyOffset, keyOffset + rows.keySize)));
      collection.expiredRows.push({ ref: this.refs[ref].ref, series: slot, gone, totals: values.slice() });
    } else series.markLive(slot, this.pass);
  }

  /** The slot of the row read at `position` (its key at `keys[offset..]`), added on first sight. */
  private rowAt(position: number, keys: Buffer, offset: number, now: number): number {
    let row = position < this.lastCount ? this.lastByPosition[position] : -1;
    if (row < 0 || !this.rowKeys.matches(row, keys, offset)) {
      row = this.rowKeys.find(keys, offset);
      if (row < 0) row = this.addRow(keys, offset, now);
    }
    this.byPosition[position] = row;
    this.rowSeenIn[row] = this.pass;
    return row;
  }

  private addRow(keys: Buffer, offset: number, now: number): number {
    const row = this.rowKeys.add(keys, offset);
    if (this.rowSeries.length < this.rowKeys.capacity) this.resizeRows(this.rowKeys.capacity);
    this.rowSeries[row] = -1;
    this.rowGroup[row] = this.groupOf(keys, offset);
    this.rowGeneration[row] = -1;
    this.rowRef[row] = this.refOf(this.endpointKey.ref(keys, offset));
    this.rowActivity[row] = -1;
    this.rowChangedAt[row] = now;
    return row;
  }

  /** Touches a series for this collection: the first touch zeroes its totals and adds it to the output. */
  private touch(slot: number): void {
    if (!this.series.touch(slot, this.pass)) return;
    if (this.touchedCount === this.touched.length) this.touched = resized(this.touched, this.touched.length * 2);
    this.touched[this.touchedCount++] = slot;
  }

  /** The ref's endpoint, resolved again when attribution may name it differently (once per collection while unknown). */
  private endpointOf(ref: number, generation: number): LocalEndpoint {
    const entry = this.refs[ref];
    if (entry.generation !== generation || (entry.endpoint.kind === 'unknown' && entry.checkedIn !== this.pass)) {
      entry.endpoint = this.options.attribution.resolveRef(entry.ref);
      entry.generation = generation;
      entry.checkedIn = this.pass;
    }
    return entry.endpoint;
  }

  private refOf(ref: EndpointRef): number {
    const key = refKey(ref);
    let id = this.refIds.get(key);
    if (id === undefined) {
      id = this.refs.length;
      this.refIds.set(key, id);
      const { attribution } = this.options;
      this.refs.push({ ref, key, endpoint: attribution.resolveRef(ref), generation: attribution.endpointGeneration, checkedIn: this.pass });
    }
    return id;
  }

  /** The row's group id, from its key fields; -1 when describe skips the row. */
  private groupOf(keys: Buffer, offset: number): number {
    const group = this.options.describe ? this.options.describe(keyFieldView(this.keyFields, keys, offset)) : NO_GROUP;
    if (!group) return -1;
    let id = this.groupIds.get(group.key);
    if (id === undefined) {
      // Frozen: series share it, and exporters cache its encoding (see CounterSeriesStore.attributeParts).
      Object.freeze(group.attributes);
      id = this.groups.length;
      this.groups.push(group);
      this.groupIds.set(group.key, id);
    }
    return id;
  }

  private retire(keys: Buffer[], rows: ExpiredRow[]): void {
    const { object, mapName, attribution, fields } = this.options;
    object.mapDeleteKeys(mapName, Buffer.concat(keys));
    for (const { ref, series, gone, totals } of rows) {
      if (gone) attribution.forgetRef(ref);
      let kept = this.retired.get(series);
      if (!kept) {
        const forever = this.series.endpoint(series).kind !== 'pod' && !this.series.isFlow(series);
        this.retired.set(series, (kept = { totals: new Array<number>(fields.length).fill(0), forever }));
      }
      for (let f = 0; f < fields.length; f++) kept.totals[f] += totals[f];
    }
  }

  /** Forgets rows not in this read (deleted from the map) and the refs only they used. */
  private forgetUnseenRows(count: number): void {
    const last = this.lastByPosition;
    this.lastByPosition = this.byPosition;
    this.lastCount = count;
    this.byPosition = last;
    if (this.rowKeys.size === count) return;
    const pass = this.pass;
    const moved = this.rowKeys.compact((row) => this.rowSeenIn[row] === pass);
    // The refs that surviving rows use, in order of first use; refMoved[old index] is the new one (-1: not yet kept).
    const refs: RefEntry[] = [];
    const refIds = new Map<bigint, number>();
    const refMoved = new Int32Array(this.refs.length).fill(-1);
    for (let row = 0; row < moved.length; row++) {
      const to = moved[row];
      if (to < 0) continue;
      const ref = this.rowRef[row];
      let id = refMoved[ref];
      if (id < 0) {
        id = refMoved[ref] = refs.length;
        refs.push(this.refs[ref]);
        refIds.set(this.refs[ref].key, id);
      }
      this.rowSeries[to] = this.rowSeries[row];
      this.rowGroup[to] = this.rowGroup[row];
      this.rowGeneration[to] = this.rowGeneration[row];
      this.rowSeenIn[to] = this.rowSeenIn[row];
      this.rowRef[to] = id;
      this.rowActivity[to] = this.rowActivity[row];
      this.rowChangedAt[to] = this.rowChangedAt[row];
    }
    this.refs = refs;
    this.refIds = refIds;
    // Every row of this read was seen, so each position still has its row.
    for (let i = 0; i < count; i++) this.lastByPosition[i] = moved[this.lastByPosition[i]];
    if (this.rowSeries.length > this.rowKeys.capacity) this.resizeRows(this.rowKeys.capacity);
  }

  /** Forgets series no row or retired total touched in this collection (their rows went, or were named anew). */
  private forgetUntouchedSeries(): void {
    const moved = this.series.compact(this.pass);
    for (let row = 0; row < this.rowKeys.size; row++) {
      const slot = this.rowSeries[row];
      // A skipped row has no series; a row whose series went is named again when next read.
      if (slot >= 0) this.rowSeries[row] = moved[slot];
    }
    for (let i = 0; i < this.touchedCount; i++) this.touched[i] = moved[this.touched[i]];
    const retired = new Map<number, { totals: number[]; forever: boolean }>();
    for (const [slot, kept] of this.retired) retired.set(moved[slot], kept);
    this.retired = retired;
  }

  private resizeRows(capacity: number): void {
    this.rowSeries = resized(this.rowSeries, capacity);
    this.rowGroup = resized(this.rowGroup, capacity);
    this.rowGeneration = resized(this.rowGeneration, capacity);
    this.rowSeenIn = resized(this.rowSeenIn, capacity);
    this.rowRef = resized(this.rowRef, capacity);
    this.rowActivity = resized(this.rowActivity, capacity);
    this.rowChangedAt = resized(this.rowChangedAt, capacity);
  }

  /** How long a row's counters have not moved (0 when they just did). */
  private idleFor(row: number, activity: number, now: number): number {
    if (this.rowActivity[row] !== activity) {
      this.rowActivity[row] = activity;
      this.rowChangedAt[row] = now;
      return 0;
    }
    return now - this.rowChangedAt[row];
  }
}

/** A collection's series of one table, each made when read from the columns they were summed in. */
class CounterRowsView<F extends string> implements CounterRows<F> {
  constructor(
    readonly fields: readonly F[],
    private readonly series: SeriesColumns,
    private readonly slots: Int32Array,
  ) {}

  get length(): number {
    return this.slots.length;
  }

  at(index: number): SeriesTotals<F> {
    return new SeriesRow(this.fields, this.series, this.slots[index]);
  }

  *[Symbol.iterator](): Iterator<SeriesTotals<F>> {
    for (let i = 0; i < this.slots.length; i++) yield this.at(i);
  }
}

/** One series as read: a view of its columns, with its totals, key and attributes made on first read. */
class SeriesRow<F extends string> implements SeriesTotals<F> {
  private totalsRecord: Record<F, number> | undefined;

  constructor(
    private readonly fields: readonly F[],
    private readonly series: SeriesColumns,
    private readonly slot: number,
  ) {}

  get endpoint(): LocalEndpoint {
    return this.series.endpoints[this.slot];
  }

  get tag(): string | undefined {
    return this.series.tag(this.slot);
  }

  get seriesKey(): string {
    return this.series.seriesKey(this.slot);
  }

  get startTime(): HrTime {
    return this.series.startTime(this.slot);
  }

  get totals(): Record<F, number> {
    if (this.totalsRecord) return this.totalsRecord;
    const totals = {} as Record<F, number>;
    this.fields.forEach((field, f) => (totals[field] = this.series.total(this.slot, f)));
    return (this.totalsRecord = totals);
  }

  total(field: number): number {
    return this.series.total(this.slot, field);
  }

  get attributes(): Attributes {
    return Object.assign({}, ...this.attributeParts());
  }

  attributeParts(): readonly Attributes[] {
    return this.series.attributeParts(this.slot);
  }
}

/** Offset of a u64 counter `field` (`member` or `member[i]` of a u64 array) in a value struct. */
function counterOffset(structName: string, layout: StructLayoutInfo, field: string): number {
  const element = /^(\w+)\[(\d+)\]$/.exec(field);
  const memberName = element ? element[1] : field;
  const member = new StructReader(structName, layout, [memberName]).member(memberName);
  const index = element ? Number(element[2]) : 0;
  if (member.size % 8 !== 0 || (index + 1) * 8 > member.size) {
    throw new Error(
      `struct ${structName}: counter '${field}' is not a u64 ${element ? 'array element' : 'member'} (member '${memberName}' is ${member.size} bytes)`,
    );
  }
  return member.offset + index * 8;
}

/** A copy of `array` with `length` elements (cut, or zero-filled). */
function resized<T extends Int32Array | Float64Array>(array: T, length: number): T {
  const next = new (array.constructor as new (length: number) => T)(length);
  next.set(array.length > length ? array.subarray(0, length) : array);
  return next;
}
