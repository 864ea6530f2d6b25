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
import { hrTime } from '@opentelemetry/core';
import type { NativeBpfObject, StructLayoutInfo } from '../../bpf/native';
import { MapRowsReader } from '../../bpf/map-rows-reader';
import { StructReader, sumPerCpu } from '../../bpf/struct-reader';
import type { CgroupAttribution, LocalEndpoint } from '../../k8s/attribution';
import { AttributesOf, type AttributeParts } from '../series';
import { GoneRows, RowIdentityReader, type DescribeRow, type RowIdentity } from './row-identity';

export interface SeriesTotals<F extends string> {
  endpoint: LocalEndpoint;
  /** The group's own classification of the row (from describe), e.g. which statistic it is. */
  tag?: string;
  /** Same identity the table aggregates by: endpoint, peer and group key. */
  seriesKey: string;
  /** Endpoint, peer and group attributes together. */
  attributes: Attributes;
  totals: Record<F, number>;
  /** When this series began accumulating (its rows may be older: a series ends and restarts with its pod's metadata). */
  readonly startTime: HrTime;
}

export interface EndpointCounterTableOptions<F extends string> {
  object: NativeBpfObject;
  mapName: string;
  keyStruct: string;
  /**
   * Value struct with u64 members `fields` (an element of a u64 array member
   * is named `member[i]`); omit when the value is one scalar (then fields = ['value']).
   */
  valueStruct?: string;
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
  idleFlowEvictMs?: number;
  now?: () => number;
}

/** Where a series gets its name: a row's identity (attributes built on read). */
interface SeriesSource extends AttributeParts {
  readonly endpoint: LocalEndpoint;
  readonly tag?: string;
  readonly attributes: Attributes;
}

/**
 * A series' running totals, reused from collection to collection (`pass`
 * says when it was last reset). Its attributes are its source's (the row
 * identity that last touched it), built when read by the exporter.
 */
class Accumulator<F extends string> extends AttributesOf<SeriesSource> implements SeriesTotals<F> {
  endpoint: LocalEndpoint;
  tag?: string;
  pass = 0;
  /** The last collection in which a row that stays in the map counted into it. */
  livePass = 0;

  constructor(
    readonly seriesKey: string,
    source: SeriesSource,
    readonly totals: Record<F, number>,
    readonly startTime: HrTime,
  ) {
    super(source);
    this.endpoint = source.endpoint;
  }
}

/** A kernel row to delete: its endpoint is gone, or (a flow) it has been idle. */
interface ExpiredRow {
  identity: RowIdentity;
  gone: boolean;
  totals: number[];
}

/** A row's running state, kept on its cache entry (one lookup per row per collection). */
interface RowState<F extends string> {
  /** The identity `acc` was looked up for; a rebuilt identity may belong to another series. */
  identity: RowIdentity;
  acc: Accumulator<F>;
  /** Sum of the row's counters at `changedAt`: a flow row that stops moving is evicted when idle. */
  activity: number;
  changedAt: number;
}

export class EndpointCounterTable<F extends string> {
  private readonly rows: RowIdentityReader<RowState<F>>;
  private readonly reader: MapRowsReader;
  private readonly gone: GoneRows;
  private readonly valueOffsets: number[];
  /**
   * Totals of deleted rows, by series, so a series never goes backwards while
   * it lasts: rows of the node's many cgroups share a series, and one of them
   * may be deleted (its cgroup gone, its flow idle) while others still count.
   * `forever`: the node's (or unknown) series at pod granularity never ends.
   */
  private readonly retired = new Map<string, { source: SeriesSource; totals: Record<string, number>; forever: boolean }>();
  private readonly accumulators = new Map<string, Accumulator<F>>();
  private readonly now: () => number;
  private pass = 0;
  private startTime: HrTime | undefined;

  constructor(private readonly options: EndpointCounterTableOptions<F>) {
    const { object } = options;
    this.rows = new RowIdentityReader(object, options.keyStruct, options.keyFields, options.attribution, options.describe);
    this.reader = new MapRowsReader(object, options.mapName);
    this.gone = new GoneRows(options.attribution, options.gracePeriodMs);
    if (options.valueStruct) {
      const layout = object.structLayout(options.valueStruct);
      this.valueOffsets = options.fields.map((f) => counterOffset(options.valueStruct!, layout, f));
    } else {
      if (options.fields.length !== 1) throw new Error(`${options.mapName}: a scalar value has exactly one field`);
      this.valueOffsets = [0];
    }
    this.now = options.now ?? Date.now;
  }

  /**
   * Current totals per series. The returned objects are reused by the next
   * collection: read them before calling collect() again.
   */
  collect(): Array<SeriesTotals<F>> {
    const { fields, possibleCpus, idleFlowEvictMs } = this.options;
    const rows = this.reader.read();
    const perCpuStride = rows.valueStride / possibleCpus;
    const out: Array<Accumulator<F>> = [];
    const expired: Buffer[] = [];
    const expiredRows: ExpiredRow[] = [];
    const now = this.now();
    const pass = ++this.pass;
    const values = new Array<number>(fields.length);
    // Series that begin in this collection share one start time (one array, not one per new flow).
    this.startTime = undefined;
    this.gone.begin();
    this.rows.begin();

    for (const [key, entry] of this.retired) {
      const acc = this.accumulator(key, entry.source, out);
      for (const field of fields) acc.totals[field] = entry.totals[field];
    }
    for (let i = 0; i < rows.count; i++) {
      const keyOffset = i * rows.keySize;
      const entry = this.rows.entry(rows.keys, keyOffset);
      const identity = entry.identity;
      if (!identity) continue;
      let state = entry.state;
      if (state === undefined || state.identity !== identity) {
        // New row, or its identity was rebuilt (it may belong to another series now): look its series up once.
        const previous = state;
        state = entry.state = { identity, acc: this.accumulator(identity.seriesKey, identity, out), activity: previous?.activity ?? -1, changedAt: previous?.changedAt ?? now };
      }
      const acc = this.touch(state.acc, identity, out);
      let activity = 0;
      for (let f = 0; f < fields.length; f++) {
        const value = sumPerCpu(rows.values, i * rows.valueStride + this.valueOffsets[f], possibleCpus, perCpuStride, this.options.signed);
        values[f] = value;
        acc.totals[fields[f]] += value;
        activity += Math.abs(value);
      }
      const gone = this.gone.expired(identity.ref, identity.endpoint, now);
      const idle = identity.flow && idleFlowEvictMs !== undefined && idleFor(state, activity, now) >= idleFlowEvictMs;
      if (gone || idle) {
        expired.push(rows.keys.subarray(keyOffset, keyOffset + rows.keySize));
        expiredRows.push({ identity, gone, totals: values.slice() });
      } else acc.livePass = pass;
    }
    this.gone.end();
    this.rows.end();
    if (this.accumulators.size > out.length) {
      for (const [key, acc] of this.accumulators) if (acc.pass !== pass) this.accumulators.delete(key);
    }
    if (expired.length) this.retire(expired, expiredRows);
    // A series ends when its last row is deleted (a pod's, an idle flow's).
    for (const [key, entry] of this.retired) {
      if (!entry.forever && this.accumulators.get(key)?.livePass !== pass) this.retired.delete(key);
    }
    return out;
  }

  /** The series' accumulator (created on first use), touched for this collection. */
  private accumulator(seriesKey: string, source: SeriesSource, out: Array<Accumulator<F>>): Accumulator<F> {
    let acc = this.accumulators.get(seriesKey);
    if (!acc) {
      acc = new Accumulator(seriesKey, source, zero(this.options.fields), (this.startTime ??= hrTime()));
      this.accumulators.set(seriesKey, acc);
    }
    return this.touch(acc, source, out);
  }

  /**
   * Resets the accumulator and adds it to `out` the first time a collection
   * touches it. It takes the attributes of the first row that touches it in a
   * collection, so a series renamed by new metadata keeps its key and totals.
   */
  private touch(acc: Accumulator<F>, source: SeriesSource, out: Array<Accumulator<F>>): Accumulator<F> {
    if (acc.pass !== this.pass) {
      acc.pass = this.pass;
      acc.endpoint = source.endpoint;
      acc.source = source;
      if (source.tag !== undefined) acc.tag = source.tag;
      for (const field of this.options.fields) acc.totals[field] = 0;
      out.push(acc);
    }
    return acc;
  }

  private retire(keys: Buffer[], rows: ExpiredRow[]): void {
    this.options.object.mapDeleteKeys(this.options.mapName, Buffer.concat(keys));
    const { fields } = this.options;
    for (const { identity, gone, totals } of rows) {
      if (gone) this.options.attribution.forgetRef(identity.ref);
      const forever = identity.endpoint.kind !== 'pod' && !identity.flow;
      const kept = this.retired.get(identity.seriesKey) ?? { source: identity, totals: zero(fields), forever };
      fields.forEach((field, f) => (kept.totals[field] += totals[f]));
      this.retired.set(identity.seriesKey, kept);
    }
  }
}

/** Offset of a u64 counter `field` (`member` or `member[i]` of a u64 array) in a value struct. */
function counterOffset(structName: string, layout: StructLayoutInfo, field: string): number {
  const element = /^(\w+)\[(\d+)\]$/.exec(field);
  const memberName = element ? element[1] : field;
  const member = new StructReader(structName, layout, [memberName]).member(memberName);
  const index = element ? Number(element[2]) : 0;
  if (member.size % 8 !== 0 || (index + 1) * 8 > member.size) {
    throw new Error(`struct ${structName}: counter '${field}' is not a u64 ${element ? 'array element' : 'member'} (member '${memberName}' is ${member.size} bytes)`);
  }
  return member.offset + index * 8;
}

/** How long a row's counters have not moved (0 when they just did). */
function idleFor<F extends string>(state: RowState<F>, activity: number, now: number): number {
  if (state.activity !== activity) {
    state.activity = activity;
    state.changedAt = now;
    return 0;
  }
  return now - state.changedAt;
}

function zero<F extends string>(fields: readonly F[]): Record<F, number> {
  const out = {} as Record<F, number>;
  for (const f of fields) out[f] = 0;
  return out;
}
