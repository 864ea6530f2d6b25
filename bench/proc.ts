/** Process and kernel readings for the benchmarks. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** user+system CPU seconds a process has used (all its threads). */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime (fields 14, 15)
}

export function rssBytes(pid: number): number {
  const line = fs
    .readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return line ? Number(line.split(/\s+/)[1]) * 1024 : NaN;
}

export interface ProgramStats {
  name: string;
  runTimeNs: number;
  runCount: number;
}

/** run_time_ns and run_cnt of every loaded BPF program with one of `names` (needs kernel.bpf_stats_enabled=1). */
export function programStats(names: readonly string[]): Map<number, ProgramStats> {
  const out = new Map<number, ProgramStats>();
  const list = JSON.parse(execFileSync('bpftool', ['prog', 'show', '-j']).toString()) as Array<{
    id: number;
    name?: string;
    run_time_ns?: number;
    run_cnt?: number;
  }>;
  for (const p of list) {
    if (p.name && names.includes(p.name)) out.set(p.id, { name: p.name, runTimeNs: p.run_time_ns ?? 0, runCount: p.run_cnt ?? 0 });
  }
  return out;
}

export function setBpfStats(enabled: boolean): void {
  fs.writeFileSync('/proc/sys/kernel/bpf_stats_enabled', enabled ? '1' : '0');
}
