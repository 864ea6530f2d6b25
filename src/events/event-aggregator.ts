/**
 * Folds repeats of one network event into a summary log record per window.
 *
 * Why: a flood of the same event (a crash-looping client refused by a dead
 * service, a scan hitting a closed port, a black-holed peer) would otherwise
 * become one log record each: more than the log pipeline can carry (the SDK
 * drops records once its queue is full) and noise to whoever reads them. The
 * metrics count every event either way; this only shapes the log stream.
 *
 * How: the first event with a given key in a window is emitted at once,
 * whole. Later events with the same key in that window are only counted. When
 * the window closes, one record stands for them: the first event's
 * attributes without those that vary between repeats, plus
 * flowtel.event.count. So the number of events a log stream stands for is
 * the sum of flowtel.event.count over records, 1 where it is absent.
 *
 * The key is the group's: local endpoint, reason, and the peer, with the
 * client's ephemeral port left out (see EphemeralPorts), so repeats from new
 * connections fold together.
 */
import type { Attributes } from '@opentelemetry/api';
import { ATTR_FLOWTEL_EVENT_COUNT } from '../semconv';
import type { NetworkEvent } from './emit';

export interface RepeatableEvent extends NetworkEvent {
  /** The summary's body: what every repeat shares, e.g. "packet 10.0.0.1 -> 10.0.0.2:53 dropped (NO_SOCKET) in …". */
  pattern: string;
  /** Attributes that may differ between events with the same key (an ephemeral port, a length); summaries leave them out. */
  varying: readonly string[];
}

/** Builds the full event from its ring record; called only for events that are emitted on their own. */
export type EventBuilder = (buf: Buffer, offset: number) => RepeatableEvent;

/** Where probe groups hand their events (ProbeContext.events). */
export interface EventSink {
  offer(key: string, kernelTimeNs: bigint, build: EventBuilder, buf: Buffer, offset: number): void;
}

export interface AggregationOptions {
  /** 0: every event is its own record. */
  windowMs: number;
  /** Distinct keys tracked per window; events with further keys are emitted on their own. */
  maxKeys: number;
}

interface OpenWindow {
  first: RepeatableEvent;
  repeats: number;
  lastKernelTimeNs: bigint;
}

export class EventAggregator implements EventSink {
  private windows = new Map<string, OpenWindow>();
  private timer: NodeJS.Timeout | undefined;
  /** After stop() nothing would close a window: events still arriving (the ring's last batch) go out one each. */
  private stopped = false;
  private foldedTotal = 0;
  private summariesTotal = 0;

  constructor(
    private readonly emit: (event: NetworkEvent) => void,
    private readonly options: AggregationOptions,
  ) {}

  /** Events counted into a summary instead of being emitted on their own. */
  get folded(): number {
    return this.foldedTotal;
  }

  /** Summary records emitted. */
  get summaries(): number {
    return this.summariesTotal;
  }

  start(): void {
    if (this.options.windowMs === 0 || this.timer) return;
    this.timer = setInterval(() => this.flush(), this.options.windowMs);
    this.timer.unref();
  }

  /** Emits the summaries of the open windows; at agent stop, before the log pipeline's final flush. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.flush();
  }

  offer(key: string, kernelTimeNs: bigint, build: EventBuilder, buf: Buffer, offset: number): void {
    if (this.options.windowMs === 0 || this.stopped) {
      this.emit(build(buf, offset));
      return;
    }
    const open = this.windows.get(key);
    if (open) {
      open.repeats++;
      open.lastKernelTimeNs = kernelTimeNs;
      this.foldedTotal++;
      return;
    }
    const event = build(buf, offset);
    this.emit(event);
    if (this.windows.size < this.options.maxKeys) this.windows.set(key, { first: event, repeats: 0, lastKernelTimeNs: kernelTimeNs });
  }

  /** Closes every window: one summary for each key that repeated. */
  flush(): void {
    const closing = this.windows;
    this.windows = new Map();
    for (const window of closing.values()) {
      if (window.repeats === 0) continue;
      this.summariesTotal++;
      this.emit(summaryOf(window, this.options.windowMs));
    }
  }
}

function summaryOf(window: OpenWindow, windowMs: number): NetworkEvent {
  const { first, repeats } = window;
  const attributes: Attributes = { ...first.attributes };
  for (const name of first.varying) delete attributes[name];
  attributes[ATTR_FLOWTEL_EVENT_COUNT] = repeats;
  return {
    eventName: first.eventName,
    kernelTimeNs: window.lastKernelTimeNs,
    body: `${first.pattern}: ${repeats} more within ${windowMs} ms`,
    attributes,
  };
}
