/**
 * OpenTelemetry's own warnings and errors (its diagnostic logger and global
 * error handler) through the agent's log, so an SDK complaint is not lost
 * on a console nobody reads. Each distinct message is told at once, then at
 * most once per interval with how often it repeated. Failed exports and
 * partial successes are left out: the export watch
 * (src/exporters/export-watch) tells those, with the destination and counts.
 */
import { diag, DiagLogLevel, type DiagLogger } from '@opentelemetry/api';
import { setGlobalErrorHandler } from '@opentelemetry/core';
import type { AgentLog } from '../util/log';

/** Messages the export watch already tells, by how they start. */
const TOLD_BY_EXPORT_WATCH = [
  'PeriodicExportingMetricReader: metrics export failed',
  'PeriodicExportingMetricReader: metrics export timed out',
  'Received Partial Success response',
];

interface Seen {
  repeats: number;
  nextAt: number;
}

export class DiagnosticLog implements DiagLogger {
  private readonly seen = new Map<string, Seen>();

  constructor(
    private readonly log: AgentLog,
    private readonly repeatIntervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  error(message: string, ...args: unknown[]): void {
    this.tell('error', message, args);
  }
  warn(message: string, ...args: unknown[]): void {
    this.tell('warn', message, args);
  }
  info(): void {}
  debug(): void {}
  verbose(): void {}

  private tell(level: 'warn' | 'error', message: string, args: unknown[]): void {
    if (TOLD_BY_EXPORT_WATCH.some((prefix) => message.startsWith(prefix))) return;
    const text = [message, ...args.map(describe)].join(' ').slice(0, MAX_MESSAGE_CHARS);
    // The message without its numbers: "timed out after 30000ms" and "after 29000ms" are one trouble.
    const key = message.replace(/\d+/g, '#').slice(0, 120);
    const now = this.now();
    const seen = this.seen.get(key);
    if (seen && now < seen.nextAt) {
      seen.repeats++;
      return;
    }
    const repeats = seen?.repeats ?? 0;
    if (!seen && this.seen.size >= MAX_DISTINCT_MESSAGES) this.seen.delete(this.seen.keys().next().value!);
    this.seen.set(key, { repeats: 0, nextAt: now + this.repeatIntervalMs });
    this.log[level](`opentelemetry: ${text}`, repeats ? { repeatedSinceLastLine: repeats } : {});
  }
}

/** Distinct messages remembered; the oldest is forgotten beyond it. */
const MAX_DISTINCT_MESSAGES = 256;
const MAX_MESSAGE_CHARS = 1024;

function describe(arg: unknown): string {
  if (arg instanceof Error) return arg.message;
  if (typeof arg === 'string') return arg;
  try {
    return JSON.stringify(arg) ?? String(arg);
  } catch {
    return String(arg);
  }
}

/** Installs the diagnostic log at warn level and routes the SDK's global error handler to it; returns the undo. */
export function installDiagnosticLog(log: AgentLog, repeatIntervalMs: number): () => void {
  const logger = new DiagnosticLog(log, repeatIntervalMs);
  diag.setLogger(logger, { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
  // The default handler writes the error as JSON; its message is what an operator reads, and what is filtered on.
  setGlobalErrorHandler((error) => logger.error(error instanceof Error ? error.message : describe(error)));
  return () => diag.disable();
}
