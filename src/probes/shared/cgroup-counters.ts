/**
 * Reads a per-CPU hash map keyed by socket cgroup id whose value is a struct
 * of u64 counters, and turns it into running totals per local endpoint.
 * Several cgroups can share an endpoint (every non-pod cgroup is "the node"),
 * so totals are summed per endpoint. Rows of cgroups removed for longer than
 * the grace period are deleted from the kernel map so it never fills up; a
 * shared endpoint keeps their last totals so its counter never goes back.
 */
import type { NativeBpfObject } from '../../bpf/native';
import { StructReader, sumPerCpuU64 } from '../../bpf/struct-reader';
import type { CgroupAttribution, LocalEndpoint } from '../../k8s/attribution';

export interface EndpointTotals<F extends string> {
  endpoint: LocalEndpoint;
  totals: Record<F, number>;
}

export interface CgroupCounterTableOptions<F extends string> {
  object: NativeBpfObject;
  mapName: string;
  keyStruct: string;
  valueStruct: string;
  fields: readonly F[];
  attribution: CgroupAttribution;
  possibleCpus: number;
  gracePeriodMs: number;
  now?: () => number;
}

export class CgroupCounterTable<F extends string> {
  private readonly key: StructReader<'cgroup_id'>;
  private readonly value: StructReader<F>;
  private readonly retired = new Map<string, { endpoint: LocalEndpoint; totals: Record<F, number> }>();
  private readonly goneSince = new Map<bigint, number>();
  private readonly now: () => number;

  constructor(private readonly options: CgroupCounterTableOptions<F>) {
    const { object } = options;
    this.key = new StructReader(options.keyStruct, object.structLayout(options.keyStruct), ['cgroup_id']);
    this.value = new StructReader(options.valueStruct, object.structLayout(options.valueStruct), options.fields);
    this.now = options.now ?? Date.now;
  }

  collect(): Array<EndpointTotals<F>> {
    const { object, mapName, fields, attribution, possibleCpus } = this.options;
    const rows = object.mapReadAll(mapName);
    const perCpuStride = rows.valueStride / possibleCpus;
    const byEndpoint = new Map<string, EndpointTotals<F>>();
    const expired: Buffer[] = [];
    const expiredTotals: Array<{ endpoint: LocalEndpoint; totals: Record<F, number>; id: bigint }> = [];

    for (const [key, entry] of this.retired) byEndpoint.set(key, { endpoint: entry.endpoint, totals: { ...entry.totals } });
    for (let i = 0; i < rows.count; i++) {
      const keyOffset = i * rows.keySize;
      const cgroupId = this.key.bigint(rows.keys, keyOffset, 'cgroup_id');
      const endpoint = attribution.resolve(cgroupId);
      const totals = {} as Record<F, number>;
      for (const field of fields) {
        totals[field] = Number(sumPerCpuU64(rows.values, i * rows.valueStride, this.value.member(field).offset, possibleCpus, perCpuStride));
      }
      let sum = byEndpoint.get(endpoint.key);
      if (!sum) {
        sum = { endpoint, totals: zero(fields) };
        byEndpoint.set(endpoint.key, sum);
      }
      for (const field of fields) sum.totals[field] += totals[field];
      if (this.isExpired(cgroupId)) {
        expired.push(rows.keys.subarray(keyOffset, keyOffset + rows.keySize));
        expiredTotals.push({ endpoint, totals, id: cgroupId });
      }
    }
    if (expired.length) this.retire(expired, expiredTotals);
    return [...byEndpoint.values()];
  }

  private isExpired(cgroupId: bigint): boolean {
    if (this.options.attribution.isLive(cgroupId)) {
      this.goneSince.delete(cgroupId);
      return false;
    }
    const since = this.goneSince.get(cgroupId);
    if (since === undefined) {
      this.goneSince.set(cgroupId, this.now());
      return false;
    }
    return this.now() - since >= this.options.gracePeriodMs;
  }

  private retire(keys: Buffer[], rows: Array<{ endpoint: LocalEndpoint; totals: Record<F, number>; id: bigint }>): void {
    this.options.object.mapDeleteKeys(this.options.mapName, Buffer.concat(keys));
    for (const row of rows) {
      this.goneSince.delete(row.id);
      this.options.attribution.forget(row.id);
      // A pod container's series ends with it; shared endpoints keep counting.
      if (row.endpoint.kind === 'pod') continue;
      const kept = this.retired.get(row.endpoint.key) ?? { endpoint: row.endpoint, totals: zero(this.options.fields) };
      for (const field of this.options.fields) kept.totals[field] += row.totals[field];
      this.retired.set(row.endpoint.key, kept);
    }
  }
}

function zero<F extends string>(fields: readonly F[]): Record<F, number> {
  const out = {} as Record<F, number>;
  for (const f of fields) out[f] = 0;
  return out;
}
