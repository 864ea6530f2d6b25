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
