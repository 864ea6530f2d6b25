/**
 * OTLP/HTTP: one POST per export to the signal's URL, over a keep-alive
 * connection, retried as the OTLP specification says for HTTP: on 429, 502,
 * 503 and 504, and when the collector cannot be reached, after the delay its
 * Retry-After header asks for (else with backoff), while the export's
 * deadline leaves room. The body goes out as it is or gzipped; the answer's
 * body is handed back for partial-success decoding.
 */
import http from 'node:http';
import https from 'node:https';
import zlib from 'node:zlib';
import type { ExportResponse, IExporterTransport } from '@opentelemetry/otlp-exporter-base';
import type { ExportClosing } from './closing';
import { DEFAULT_RETRY, withRetries, type RetryPolicy } from './retry';
import type { GrpcEndpoint } from './grpc-endpoint';

/** Statuses the specification calls retryable for OTLP/HTTP. */
const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);
/** A collector's answer is a small protobuf message; more is refused. */
const MAX_RESPONSE_BYTES = 4 << 20;

/** A failed OTLP/HTTP export; `statusCode` when the collector answered. */
export class HttpExportError extends Error {
  constructor(
    message: string,
    readonly statusCode?: number,
    /** What Retry-After asked for, in ms. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'HttpExportError';
  }
}

export class HttpExportTransport implements IExporterTransport {
  private readonly agent: http.Agent;
  private readonly inFlight = new Set<http.ClientRequest>();
  private closed = false;

  constructor(
    /** The signal's full URL (…/v1/metrics), TLS material, headers and compression. */
    private readonly settings: GrpcEndpoint,
    private readonly contentType: string,
    private readonly userAgent: string,
    /** Called with each request once no attempt reads it any more (its buffer may take the next request). */
    private readonly onSent?: (request: Uint8Array) => void,
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
    private readonly closing?: ExportClosing,
  ) {
    const tls = settings.tls;
    this.agent =
      settings.url.protocol === 'https:' ? new https.Agent({ keepAlive: true, maxSockets: 1, ...tls }) : new http.Agent({ keepAlive: true, maxSockets: 1 });
    closing?.onDeadline(() => this.cancelAll(new HttpExportError('the agent stopped: its shutdown budget ran out')));
  }

  async send(data: Uint8Array, timeoutMillis: number): Promise<ExportResponse> {
    const deadline = this.closing?.clamp(Date.now() + timeoutMillis) ?? Date.now() + timeoutMillis;
    // Compressed, the request is a copy: the encoder's buffer can take the next one at once.
    const body = this.settings.gzip ? zlib.gzipSync(data) : data;
    if (body !== data) this.onSent?.(data);
    try {
      return await withRetries(
        () => this.post(body, deadline),
        (err) => {
          const error = err instanceof HttpExportError ? err : new HttpExportError((err as Error).message);
          // No status: the connection failed or was lost, which the specification retries too.
          const retryable = error.statusCode === undefined || RETRYABLE_STATUS.has(error.statusCode);
          return { error, retryable, ...(error.retryAfterMs !== undefined ? { delayMs: error.retryAfterMs } : {}) };
        },
        { policy: this.retry, deadline, timeoutMillis, closed: () => this.closed, ...(this.closing ? { closing: this.closing } : {}) },
      );
    } finally {
      if (body === data) this.onSent?.(data);
    }
  }

  async shutdown(): Promise<void> {
    this.closed = true;
    this.agent.destroy();
  }

  private cancelAll(error: HttpExportError): void {
    this.closed = true;
    for (const request of this.inFlight) request.destroy(error);
    this.agent.destroy();
  }

  /** One attempt; resolves with the answer's body once the request is closed (node no longer reads `body`). */
  private post(body: Uint8Array, deadline: number): Promise<Buffer> {
    const { url, headers } = this.settings;
    const host = url.host;
    if (this.closed) return Promise.reject(new HttpExportError('the exporter is shut down'));
    const timeoutMs = Math.max(1, deadline - Date.now());
    return new Promise((resolve, reject) => {
      let outcome: { ok: Buffer } | { error: HttpExportError } | undefined;
      const request = (url.protocol === 'https:' ? https : http).request(url, {
        method: 'POST',
        agent: this.agent,
        headers: {
          ...headers,
          'content-type': this.contentType,
          'content-length': body.byteLength,
          'user-agent': this.userAgent,
          ...(this.settings.gzip ? { 'content-encoding': 'gzip' } : {}),
        },
      });
      this.inFlight.add(request);
      // Ends the attempt at its deadline whatever the socket is doing (a collector that stopped reading).
      const timer = setTimeout(() => request.destroy(new HttpExportError(`no answer from ${host} within ${timeoutMs} ms`)), timeoutMs);
      request.on('response', (response) => {
        const chunks: Buffer[] = [];
        let received = 0;
        response.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received > MAX_RESPONSE_BYTES) request.destroy(new HttpExportError(`the answer from ${host} is over ${MAX_RESPONSE_BYTES} bytes`));
          else chunks.push(chunk);
        });
        response.on('end', () => {
          const status = response.statusCode ?? 0;
          const text = Buffer.concat(chunks);
          if (status >= 200 && status < 300) outcome = { ok: text };
          else
            outcome = {
              error: new HttpExportError(`${host} answered HTTP ${status}${describeBody(text)}`, status, retryAfterMs(response.headers['retry-after'])),
            };
        });
      });
      request.on('error', (err) => {
        outcome ??= { error: err instanceof HttpExportError ? err : new HttpExportError(`cannot reach ${host}: ${err.message}`) };
      });
      request.on('close', () => {
        clearTimeout(timer);
        this.inFlight.delete(request);
        if (outcome && 'ok' in outcome) resolve(outcome.ok);
        else reject(outcome?.error ?? new HttpExportError(`${host} closed the connection without answering`));
      });
      request.end(body);
    });
  }
}

/** The first line of a refusal's body, when it is text (collectors answer errors as a google.rpc.Status, often JSON). */
function describeBody(body: Buffer): string {
  if (body.length === 0) return '';
  const text = body.subarray(0, 200).toString('utf8');
  // A protobuf Status is binary; only printable text says something.
  return /^[\x20-\x7e\s]+$/.test(text) ? `: ${text.split('\n')[0].trim()}` : '';
}

/** Retry-After as delay-seconds or an HTTP date (RFC 9110, 10.2.3), in ms; undefined when absent or unreadable. */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
