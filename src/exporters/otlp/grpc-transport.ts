/**
 * The OpenTelemetry exporters' transport (IExporterTransport) on our gRPC
 * channel: one Export method, retried while the OTLP specification calls
 * its status retryable and the export's deadline leaves room. The
 * OpenTelemetry export delegate around it keeps its own part: serializing,
 * the concurrency limit, the export timeout and the otel.sdk.exporter.*
 * self-metrics.
 */
import type { ExportResponse, IExporterTransport } from '@opentelemetry/otlp-exporter-base';
import type { ExportClosing } from './closing';
import { GrpcCallError, GrpcStatus, type GrpcChannel } from './grpc-channel';

/** Retryable gRPC codes of the OTLP/gRPC specification; RESOURCE_EXHAUSTED too when the server sends RetryInfo. */
const RETRYABLE = new Set<number>([
  GrpcStatus.CANCELLED,
  GrpcStatus.DEADLINE_EXCEEDED,
  GrpcStatus.ABORTED,
  GrpcStatus.OUT_OF_RANGE,
  GrpcStatus.UNAVAILABLE,
  GrpcStatus.DATA_LOSS,
]);

export interface RetryPolicy {
  /** Retries after the first attempt. */
  maxRetries: number;
  /** Delay before the first retry; each next one is `multiplier` times longer, ±20% jitter. */
  initialBackoffMs: number;
  multiplier: number;
}

/** The least time left for which a retry is still started (or a quarter of the export timeout, if less). */
const MIN_ATTEMPT_MS = 1000;

export const DEFAULT_RETRY: RetryPolicy = { maxRetries: 4, initialBackoffMs: 1000, multiplier: 1.5 };

export class GrpcExportTransport implements IExporterTransport {
  constructor(
    private readonly channel: GrpcChannel,
    private readonly path: string,
    /**
     * Called with each request once no attempt reads it any more: the
     * encoder may then write the next request into the same buffer.
     */
    private readonly onSent?: (request: Uint8Array) => void,
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
    /** The agent's stop: no retries from then on, and calls still in flight at its deadline end. */
    private readonly closing?: ExportClosing,
  ) {
    closing?.onDeadline(() => channel.cancelCalls(new GrpcCallError(GrpcStatus.DEADLINE_EXCEEDED, 'the agent stopped: its shutdown budget ran out')));
  }

  async send(data: Uint8Array, timeoutMillis: number): Promise<ExportResponse> {
    const deadline = this.closing?.clamp(Date.now() + timeoutMillis) ?? Date.now() + timeoutMillis;
    // `data` goes back to the encoder once this send is over and no attempt's write still reads it (an attempt
    // that timed out may settle before node has let go of its bytes).
    let holds = 1;
    const release = () => {
      if (--holds === 0) this.onSent?.(data);
    };
    const frame = this.channel.frame(data);
    try {
      let backoff = this.retry.initialBackoffMs;
      for (let attempt = 0; ; attempt++) {
        try {
          holds++;
          return { status: 'success', data: await this.channel.call(this.path, frame, deadline, release) };
        } catch (err) {
          const error = err instanceof GrpcCallError ? err : new GrpcCallError(GrpcStatus.UNKNOWN, (err as Error).message);
          // The server's RetryInfo says how long to wait; without it, exponential backoff with jitter.
          const wait = error.retryDelayMs ?? backoff * (0.8 + 0.4 * Math.random());
          backoff *= this.retry.multiplier;
          // An attempt needs time to succeed: one started with a few ms left would only time out (and drop the connection).
          const room = deadline - Date.now() - wait;
          const stopping = () => this.channel.isClosed || this.closing?.active === true;
          const retryable = RETRYABLE.has(error.code) || (error.code === GrpcStatus.RESOURCE_EXHAUSTED && error.retryDelayMs !== undefined);
          const retry = retryable && !stopping() && attempt < this.retry.maxRetries && room >= Math.min(MIN_ATTEMPT_MS, timeoutMillis / 4);
          if (!retry) return { status: 'failure', error };
          if (this.closing) await this.closing.sleep(wait);
          else await new Promise((resolve) => setTimeout(resolve, wait));
          // The agent began to stop during the wait: its final export carries the totals, this one is given up.
          if (stopping()) return { status: 'failure', error };
        }
      }
    } finally {
      release();
    }
  }

  async shutdown(): Promise<void> {
    await this.channel.close();
  }
}
