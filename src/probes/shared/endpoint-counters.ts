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
import type { Attributes } from '@opentelemetry/api';
import type { NativeBpfObject } from '../../bpf/native';
import { StructReader } from '../../bpf/struct-reader';
import type { CgroupAttribution, LocalEndpoint } from '../../k8s/attribution';
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
}

export interface EndpointCounterTableOptions<F extends string> {
  object: NativeBpfObject;
  mapName: string;
  keyStruct: string;
  /** Value struct with u64 members `fields`; omit when the value is one scalar (then fields = ['value']). */
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

interface RowRecord extends RowIdentity {
  totals: Record<string, number>;
}

export class EndpointCounterTable<F extends string> {
  private readonly rows: RowIdentityReader;
  private readonly gone: GoneRows;
  private readonly valueOffsets: Record<string, number>;
  private readonly retired = new Map<string, { endpoint: LocalEndpoint; tag?: string; attributes: Attributes; totals: Record<string, number> }>();
  private readonly lastChange = new Map<string, { sum: number; at: number }>();
  private readonly now: () => number;

  constructor(private readonly options: EndpointCounterTableOptions<F>) {
    const { object } = options;
    this.rows = new RowIdentityReader(object, options.keyStruct, options.keyFields, options.attribution, options.describe);
    this.gone = new GoneRows(options.attribution, options.gracePeriodMs);
    if (options.valueStruct) {
      const value = new StructReader(options.valueStruct, object.structLayout(options.valueStruct), options.fields);
      this.valueOffsets = Object.fromEntries(options.fields.map((f) => [f, value.member(f).offset]));
    } else {
      if (options.fields.length !== 1) throw new Error(`${options.mapName}: a scalar value has exactly one field`);
      this.valueOffsets = { [options.fields[0]]: 0 };
    }
    this.now = options.now ?? Date.now;
  }

  collect(): Array<SeriesTotals<F>> {
    const { object, mapName, fields, possibleCpus } = this.options;
    const rows = object.mapReadAll(mapName);
    const perCpuStride = rows.valueStride / possibleCpus;
    const series = new Map<string, SeriesTotals<F>>();
    const expired: Buffer[] = [];
    const expiredRows: RowRecord[] = [];
    const now = this.now();
    this.gone.begin();

    for (const [key, entry] of this.retired) {
      series.set(key, { endpoint: entry.endpoint, tag: entry.tag, seriesKey: key, attributes: entry.attributes, totals: { ...entry.totals } as Record<F, number> });
    }
    for (let i = 0; i < rows.count; i++) {
      const keyOffset = i * rows.keySize;
      const identity = this.rows.read(rows.keys, keyOffset);
      if (!identity) continue;
      const row: RowRecord = { ...identity, totals: {} };
      for (const field of fields) {
        row.totals[field] = this.sumField(rows.values, i * rows.valueStride, this.valueOffsets[field], possibleCpus, perCpuStride);
      }
      let sum = series.get(row.seriesKey);
      if (!sum) {
        sum = { endpoint: row.endpoint, tag: row.tag, seriesKey: row.seriesKey, attributes: row.attributes, totals: zero(fields) };
        series.set(row.seriesKey, sum);
      }
      for (const field of fields) sum.totals[field] += row.totals[field];
      if (this.isExpired(rows.keys, keyOffset, rows.keySize, row, now)) {
        expired.push(rows.keys.subarray(keyOffset, keyOffset + rows.keySize));
        expiredRows.push(row);
      }
    }
    this.gone.end();
    if (expired.length) this.retire(expired, expiredRows);
    return [...series.values()];
  }

  private sumField(values: Buffer, base: number, fieldOffset: number, cpus: number, stride: number): number {
    let total = 0n;
    for (let cpu = 0; cpu < cpus; cpu++) {
      const at = base + cpu * stride + fieldOffset;
      total += this.options.signed ? values.readBigInt64LE(at) : values.readBigUInt64LE(at);
    }
    return Number(total);
  }

  private isExpired(keys: Buffer, offset: number, keySize: number, row: RowRecord, now: number): boolean {
    const { idleFlowEvictMs } = this.options;
    if (row.flow && idleFlowEvictMs !== undefined) {
      // Idleness is per row (per flow): only these rows need an identity of their own.
      const rowId = keys.toString('latin1', offset, offset + keySize);
      const sum = Object.values(row.totals).reduce((s, v) => s + Math.abs(v), 0);
      const last = this.lastChange.get(rowId);
      if (!last || last.sum !== sum) this.lastChange.set(rowId, { sum, at: now });
      else if (now - last.at >= idleFlowEvictMs) {
        this.lastChange.delete(rowId);
        return true;
      }
    }
    const expired = this.gone.expired(row.ref, row.endpoint, now);
    if (expired && row.flow && idleFlowEvictMs !== undefined) this.lastChange.delete(keys.toString('latin1', offset, offset + keySize));
    return expired;
  }

  private retire(keys: Buffer[], rows: RowRecord[]): void {
    this.options.object.mapDeleteKeys(this.options.mapName, Buffer.concat(keys));
    for (const row of rows) {
      this.options.attribution.forgetRef(row.ref);
      // A pod's series and an idle flow's series end; shared endpoints keep counting.
      if (row.endpoint.kind === 'pod' || row.flow) continue;
      const kept = this.retired.get(row.seriesKey) ?? { endpoint: row.endpoint, tag: row.tag, attributes: row.attributes, totals: zero(this.options.fields) };
      for (const field of this.options.fields) kept.totals[field] += row.totals[field];
      this.retired.set(row.seriesKey, kept);
    }
  }
}

function zero<F extends string>(fields: readonly F[]): Record<F, number> {
  const out = {} as Record<F, number>;
  for (const f of fields) out[f] = 0;
  return out;
}
