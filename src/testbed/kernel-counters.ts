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
 * hook dropped it, the device queue was full). What tcp-retransmits exports
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
