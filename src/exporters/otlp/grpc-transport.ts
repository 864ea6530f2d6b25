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
import { DEFAULT_RETRY, withRetries, type RetryPolicy } from './retry';
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
      return await withRetries(
        () => {
          holds++;
          return this.channel.call(this.path, frame, deadline, release);
        },
        (err) => {
          const error = err instanceof GrpcCallError ? err : new GrpcCallError(GrpcStatus.UNKNOWN, (err as Error).message);
          const retryable = RETRYABLE.has(error.code) || (error.code === GrpcStatus.RESOURCE_EXHAUSTED && error.retryDelayMs !== undefined);
          return { error, retryable, ...(error.retryDelayMs !== undefined ? { delayMs: error.retryDelayMs } : {}) };
        },
        { policy: this.retry, deadline, timeoutMillis, closed: () => this.channel.isClosed, ...(this.closing ? { closing: this.closing } : {}) },
      );
    } finally {
      release();
    }
  }

  async shutdown(): Promise<void> {
    await this.channel.close();
  }
}
