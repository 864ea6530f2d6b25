/**
 * What happened to one signal's exports to one destination, told to the
 * operator without flooding the log: the first failure at once, with the
 * destination and the cause; while failures go on, one summary line per
 * interval with what they cost; one line when exports succeed again. A
 * collector that accepts only part of an export (OTLP partial success) is
 * told the same way. The counts behind those lines are the ones exported as
 * self-metrics, so a log line and a dashboard never disagree.
 */

export type ExportSignal = 'metrics' | 'logs';

export interface ExportWatchLog {
  warn(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
}

export interface ExportWatchOptions {
  signal: ExportSignal;
  /** Where the exports go, as the operator configured it ("OTLP/gRPC http://collector:4317"). */
  destination: string;
  /** What one exported item is: "data points", "log records". */
  items: string;
  /** What a failed export costs, told in the first warning. */
  failureCost: string;
  log: ExportWatchLog;
  /** Fewest milliseconds between two summary lines of the same trouble. */
  summaryIntervalMs: number;
  now?: () => number;
}

/** Running totals since start; the self-metrics export these. */
export interface ExportTotals {
  succeeded: number;
  failed: number;
  /** Items in failed exports. */
  itemsFailed: number;
  /** Items the destination refused in exports it otherwise accepted (partial success). */
  itemsRejected: number;
}

/** One kind of trouble (failures, or rejections) between two log lines about it. */
interface Trouble {
  since: number;
  events: number;
  items: number;
  last: string;
  nextSummaryAt: number;
}

export class ExportWatch {
  readonly totals: ExportTotals = { succeeded: 0, failed: 0, itemsFailed: 0, itemsRejected: 0 };
  private failing: Trouble | undefined;
  /** Failures of the current outage, over all its summaries: the recovery line counts them. */
  private outage = { exports: 0, items: 0 };
  private rejecting: Trouble | undefined;
  private lastSuccess: number | undefined;
  private lastFailure = 0;
  private readonly now: () => number;
  private readonly startedAt: number;

  constructor(private readonly options: ExportWatchOptions) {
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
  }

  get signal(): ExportSignal {
    return this.options.signal;
  }

  /** When an export last succeeded (ms since the epoch), if one has. */
  get lastSuccessAt(): number | undefined {
    return this.lastSuccess;
  }

  /**
   * False while exports keep failing: none has succeeded for more than
   * `withinMs` (since start, before the first) and one failed within it. A
   * signal with nothing to send for a while (no network events, so no log
   * export) is not judged by a failure older than that.
   */
  healthy(withinMs: number): boolean {
    const now = this.now();
    return !this.failing || now - (this.lastSuccess ?? this.startedAt) <= withinMs || now - this.lastFailure > withinMs;
  }

  /** True while the latest export failed. */
  get isFailing(): boolean {
    return this.failing !== undefined;
  }

  /** Why the latest export failed, while it is failing. */
  get lastCause(): string | undefined {
    return this.failing?.last;
  }

  succeeded(): void {
    this.totals.succeeded++;
    this.lastSuccess = this.now();
    const outage = this.failing;
    if (!outage) return;
    const { signal, destination, items } = this.options;
    this.options.log.info(
      `${signal} exports to ${destination} recovered after ${this.outage.exports} failed exports over ${seconds(this.now() - outage.since)} s ` +
        `(${this.outage.items} ${items} in them)`,
      { signal, destination },
    );
    this.failing = undefined;
    this.outage = { exports: 0, items: 0 };
  }

  failed(items: number, cause: string): void {
    this.totals.failed++;
    this.lastFailure = this.now();
    this.totals.itemsFailed += items;
    this.outage.exports++;
    this.outage.items += items;
    const { signal, destination, failureCost } = this.options;
    if (!this.failing) {
      this.failing = this.startTrouble(cause);
      this.options.log.warn(`${signal} export to ${destination} failed: ${cause}; ${failureCost}. A summary follows while exports keep failing`, {
        signal,
        destination,
      });
      return;
    }
    this.report(
      this.failing,
      items,
      cause,
      (t) => `${signal} exports to ${destination} still failing: ${t.events} failed exports (${t.items} ${this.options.items})`,
    );
  }

  /** The destination accepted an export but refused `items` of it, saying `message`. */
  rejected(items: number, message: string): void {
    this.totals.itemsRejected += items;
    const { signal, destination } = this.options;
    const what = message ? `: ${message}` : '';
    if (!this.rejecting) {
      this.rejecting = this.startTrouble(message);
      this.options.log.warn(`${destination} refused ${items} ${this.options.items} of a ${signal} export (partial success)${what}; they are lost`, {
        signal,
        destination,
      });
      return;
    }
    this.report(
      this.rejecting,
      items,
      message,
      (t) => `${destination} refused ${t.items} more ${this.options.items} in ${t.events} ${signal} exports (partial success)`,
    );
  }

  private startTrouble(cause: string): Trouble {
    const now = this.now();
    return { since: now, events: 0, items: 0, last: cause, nextSummaryAt: now + this.options.summaryIntervalMs };
  }

  /** Adds to `trouble`; once its interval has passed, one summary line, and counting starts over. */
  private report(trouble: Trouble, items: number, cause: string, headline: (t: Trouble) => string): void {
    trouble.events++;
    trouble.items += items;
    trouble.last = cause;
    const now = this.now();
    if (now < trouble.nextSummaryAt) return;
    this.options.log.warn(
      `${headline(trouble)} in the last ${seconds(now - trouble.nextSummaryAt + this.options.summaryIntervalMs)} s; last cause: ${trouble.last}`,
      {
        signal: this.options.signal,
        destination: this.options.destination,
      },
    );
    trouble.events = 0;
    trouble.items = 0;
    trouble.nextSummaryAt = now + this.options.summaryIntervalMs;
  }
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(ms < 10_000 ? 1 : 0);
}
