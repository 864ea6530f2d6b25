/** Ground truth from the kernel's own counters, read inside a namespace. */
import { mustRun } from './exec';

/** Absolute values of nstat counters (TcpRetransSegs, ...) in a network namespace. */
export async function nstat(netns: string, names: string[]): Promise<Record<string, number>> {
  const text = await mustRun('ip', ['netns', 'exec', netns, 'nstat', '-a', '-s', '-z', '-j', ...names]);
  const parsed = JSON.parse(text) as { kernel: Record<string, number> };
  const out: Record<string, number> = {};
  for (const name of names) {
    if (!(name in parsed.kernel)) throw new Error(`nstat has no counter ${name}`);
    out[name] = parsed.kernel[name];
  }
  return out;
}

/**
 * Retransmitted segments by the kernel's own counters, in one read:
 * TcpRetransSegs counts a segment before its transmission is tried, and
 * TcpExtTCPRetransFail counts those whose transmission then failed (an output
 * hook dropped it, the device queue was full). What flowtel.tcp.retransmits counts
 * (tcp_retransmit_skb with err == 0) is `sent`, the difference.
 */
export async function retransmissions(netns: string): Promise<{ sent: number; failed: number }> {
  const counters = await nstat(netns, ['TcpRetransSegs', 'TcpExtTCPRetransFail']);
  return { sent: counters.TcpRetransSegs - counters.TcpExtTCPRetransFail, failed: counters.TcpExtTCPRetransFail };
}

/**
 * Runs of the loaded BPF programs named `name` that the kernel skipped
 * because the program was already running on that CPU (a softirq
 * interrupting it): bpftool's recursion_misses, absent when 0.
 */
export async function bpfRecursionMisses(name: string): Promise<number> {
  const programs = JSON.parse(await mustRun('bpftool', ['-j', 'prog', 'show'])) as Array<{ name?: string; recursion_misses?: number }>;
  return programs.filter((p) => p.name === name).reduce((sum, p) => sum + (p.recursion_misses ?? 0), 0);
}

/** Entries in the loaded map named `mapName` (at most 15 characters, as the kernel keeps them), as bpftool dumps them. */
export async function bpfMapEntryCount(mapName: string): Promise<number> {
  if (mapName.length > 15) throw new Error(`map name ${mapName} is longer than the 15 characters the kernel keeps`);
  const maps = JSON.parse(await mustRun('bpftool', ['-j', 'map', 'show'])) as Array<{ id: number; name?: string }>;
  const found = maps.filter((m) => m.name === mapName);
  if (found.length !== 1) throw new Error(`${found.length} loaded maps named ${mapName}, expected 1`);
  return (JSON.parse(await mustRun('bpftool', ['-j', 'map', 'dump', 'id', String(found[0].id)])) as unknown[]).length;
}

/**
 * Rows whose key's endpoint is one of `cgroupIds`, in every loaded map whose
 * name starts with `mapName`'s first 15 characters (all the kernel keeps, so
 * tcp_connections_counts also counts its siblings tcp_connections_failures, …).
 */
export async function bpfMapCgroupRows(mapName: string, cgroupIds: readonly bigint[]): Promise<Array<{ map: string; key: unknown; values: unknown }>> {
  const maps = JSON.parse(await mustRun('bpftool', ['-j', 'map', 'show'])) as Array<{ id: number; name?: string }>;
  const shortName = mapName.slice(0, 15);
  const found = maps.filter((m) => m.name === shortName);
  if (found.length === 0) throw new Error(`no loaded map named ${shortName}`);
  const rows: Array<{ map: string; key: unknown; values: unknown }> = [];
  for (const map of found) {
    type Row = { formatted?: { key: { endpoint?: { cgroup_id: number } }; value?: unknown; values?: unknown } };
    for (const row of JSON.parse(await mustRun('bpftool', ['-j', 'map', 'dump', 'id', String(map.id)])) as Row[]) {
      const endpoint = row.formatted?.key.endpoint;
      if (!endpoint) throw new Error(`bpftool printed map ${mapName} without a BTF-formatted endpoint key`);
      if (cgroupIds.includes(BigInt(endpoint.cgroup_id)))
        rows.push({ map: `${map.id}`, key: row.formatted?.key, values: row.formatted?.values ?? row.formatted?.value });
    }
  }
  return rows;
}

/** Packets counted by the rules of an nft chain that carry a comment, keyed by the comment. */
export async function nftRuleCounters(netns: string, family: string, table: string): Promise<Record<string, { packets: number; bytes: number }>> {
  const text = await mustRun('ip', ['netns', 'exec', netns, 'nft', '-j', 'list', 'table', family, table]);
  const parsed = JSON.parse(text) as { nftables: Array<{ rule?: { comment?: string; expr: Array<{ counter?: { packets: number; bytes: number } }> } }> };
  const out: Record<string, { packets: number; bytes: number }> = {};
  for (const item of parsed.nftables) {
    const rule = item.rule;
    if (!rule?.comment) continue;
    const counter = rule.expr.find((e) => e.counter)?.counter;
    if (counter) out[rule.comment] = { packets: counter.packets, bytes: counter.bytes };
  }
  return out;
}

/**
 * A u64 field of a loaded per-CPU hash map, summed over every CPU of the rows
 * whose struct flowtel_endpoint_key has cgroup id `cgroupId`, as bpftool
 * reads it: a witness that does not go through the agent, which tells a count
 * our programs never made from one the agent lost on the way out. Maps are
 * found by name, which the kernel cuts to 15 characters.
 */
export async function bpfMapCgroupSum(mapName: string, field: string, cgroupId: bigint): Promise<number> {
  const maps = JSON.parse(await mustRun('bpftool', ['-j', 'map', 'show'])) as Array<{ id: number; name?: string }>;
  const shortName = mapName.slice(0, 15);
  const found = maps.filter((m) => m.name === shortName);
  if (found.length === 0) throw new Error(`no loaded map named ${shortName}`);
  let sum = 0;
  for (const map of found) {
    // A per-CPU map's row has a value per CPU (values), a shared map's one value.
    type Row = {
      formatted?: { key: { endpoint?: { cgroup_id: number } }; values?: Array<{ value: Record<string, number> }>; value?: Record<string, number> };
    };
    const rows = JSON.parse(await mustRun('bpftool', ['-j', 'map', 'dump', 'id', String(map.id)])) as Row[];
    for (const row of rows) {
      const formatted = row.formatted;
      if (!formatted?.key.endpoint) throw new Error(`bpftool printed map ${mapName} without a BTF-formatted endpoint key`);
      // JSON numbers: exact for cgroup ids, which are inode numbers far below 2^53.
      if (BigInt(formatted.key.endpoint.cgroup_id) !== cgroupId) continue;
      for (const value of formatted.values?.map((v) => v.value) ?? (formatted.value ? [formatted.value] : [])) {
        if (typeof value[field] !== 'number') throw new Error(`map ${mapName} has no field ${field}`);
        sum += value[field];
      }
    }
  }
  return sum;
}

/**
 * Adds `delta` to the 64-bit integer at `byteOffset` of the value of every row of a loaded shared (not per-CPU)
 * hash map whose key's endpoint has cgroup id `cgroupId`, written back through bpftool: what an update a kernel
 * program lost would leave behind. The map is found by its name's first 15 characters (all the kernel keeps) and
 * its value size, which tells it from siblings of the same prefix. Returns the rows changed.
 */
export async function addToKernelMapRows(mapName: string, valueSize: number, cgroupId: bigint, byteOffset: number, delta: bigint): Promise<number> {
  const maps = JSON.parse(await mustRun('bpftool', ['-j', 'map', 'show'])) as Array<{ id: number; name?: string; bytes_value?: number }>;
  const found = maps.filter((m) => m.name === mapName.slice(0, 15) && m.bytes_value === valueSize);
  if (found.length !== 1) throw new Error(`${found.length} loaded maps named ${mapName.slice(0, 15)} with ${valueSize}-byte values, expected 1`);
  const id = String(found[0].id);
  type Row = { key: string[]; value: string[] };
  let changed = 0;
  for (const row of JSON.parse(await mustRun('bpftool', ['-j', 'map', 'dump', 'id', id])) as Row[]) {
    const key = Buffer.from(row.key.map((b) => parseInt(b, 16)));
    if (key.readBigUInt64LE(0) !== cgroupId) continue; // struct flowtel_endpoint_key starts with the cgroup id
    const value = Buffer.from(row.value.map((b) => parseInt(b, 16)));
    value.writeBigInt64LE(value.readBigInt64LE(byteOffset) + delta, byteOffset);
    const hex = (buf: Buffer) => [...buf].map((b) => b.toString(16).padStart(2, '0'));
    await mustRun('bpftool', ['map', 'update', 'id', id, 'key', 'hex', ...hex(key), 'value', 'hex', ...hex(value)]);
    changed++;
  }
  return changed;
}
