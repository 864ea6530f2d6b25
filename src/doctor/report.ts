/**
 * What `flowtel doctor` found: one row per check, each ok, degraded (runs,
 * with less), unavailable (does not run here; the agent goes on without it),
 * fatal (the agent cannot run at all) or info (nothing to judge). The exit
 * code follows from the rows: 0 all good, 1 degraded, 2 cannot run.
 */
import type { GroupState } from '../agent/group-loader';

export type CheckStatus = 'ok' | 'degraded' | 'unavailable' | 'fatal' | 'info';

export interface DoctorCheck {
  /** node (kernel, privileges, mounts), group (a probe group), export (OTLP) or kubernetes. */
  kind: 'node' | 'group' | 'export' | 'kubernetes';
  name: string;
  status: CheckStatus;
  /** What was found, one line. */
  detail: string;
  /** What a user goes without, when the status is not ok. */
  impact?: string;
  /** Probe groups only: the agent's own view of it (the same states as /readyz and flowtel.agent.probe_groups). */
  group?: { state: GroupState; programs: Array<{ hook: string; program: string }>; reasons: string[] };
}

export interface DoctorReport {
  node: string;
  kernel: string;
  exitCode: 0 | 1 | 2;
  checks: DoctorCheck[];
}

export function exitCodeOf(checks: readonly DoctorCheck[]): 0 | 1 | 2 {
  if (checks.some((c) => c.status === 'fatal')) return 2;
  if (checks.some((c) => c.status === 'degraded' || c.status === 'unavailable')) return 1;
  return 0;
}

const SYMBOLS: Record<CheckStatus, string> = { ok: '✓', degraded: '~', unavailable: '✗', fatal: '✗', info: '–' };

/** The report as a terminal table: a symbol, the check, what was found, and on the next line what is lost. */
export function formatTable(report: DoctorReport): string {
  const width = Math.max(...report.checks.map((c) => c.name.length));
  const lines = [`flowtel doctor: node ${report.node}, kernel ${report.kernel}`, ''];
  let kind: DoctorCheck['kind'] | undefined;
  for (const check of report.checks) {
    if (kind !== undefined && check.kind !== kind) lines.push('');
    kind = check.kind;
    lines.push(`  ${SYMBOLS[check.status]} ${check.name.padEnd(width)}  ${check.detail}`);
    if (check.impact) lines.push(`    ${' '.repeat(width)}  without it: ${check.impact}`);
  }
  const count = (status: CheckStatus) => report.checks.filter((c) => c.status === status).length;
  const summary =
    report.exitCode === 0
      ? 'everything the agent needs works here'
      : report.exitCode === 1
        ? `the agent runs with less: ${count('degraded')} degraded, ${count('unavailable')} unavailable`
        : `the agent cannot run here: ${report.checks
            .filter((c) => c.status === 'fatal')
            .map((c) => c.name)
            .join(', ')}`;
  lines.push('', `exit ${report.exitCode}: ${summary}`);
  return `${lines.join('\n')}\n`;
}
