/**
 * gRPC unary calls over node:http2, for the OTLP exporters. Why not
 * @grpc/grpc-js: it frames every message into a new buffer (and the
 * OpenTelemetry transport copies it once more before that). At 100,000 flows
 * an export is about 100 MB of requests, so each export left about 200 MB of
 * copies outside V8's heap, freed only by the GC that V8 starts after about
 * 64 MiB of such growth: that was the agent's RSS peak. Here the
 * 5-byte gRPC prefix and the caller's buffer are written to the stream as
 * they are, and node's HTTP/2 sends DATA frames from that memory.
 *
 * The protocol (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md):
 * a POST with content-type application/grpc and te: trailers, the message
 * as a length-prefixed frame, and the outcome in grpc-status of the
 * trailers (or of the headers, for a trailers-only answer).
 */
import http2 from 'node:http2';
import zlib from 'node:zlib';
import type { GrpcEndpoint } from './grpc-endpoint';
import { retryDelayFromStatusDetails } from './retry-info';

/** gRPC status codes (grpc/doc/statuscodes.md). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

const STATUS_NAMES = new Map<number, string>(Object.entries(GrpcStatus).map(([name, code]) => [code, name]));

export function grpcStatusName(code: number): string {
  return STATUS_NAMES.get(code) ?? 'UNKNOWN';
}

/** A call that did not end in OK. `code` is a gRPC status (the OpenTelemetry exporter metrics read it by that name). */
export class GrpcCallError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
    /** How long the server asked the client to wait before a retry (google.rpc.RetryInfo), in ms. */
    readonly retryDelayMs?: number,
  ) {
    super(details);
    // The status name: the exporter metrics label failures with it (error.type), and it leads the printed error.
    this.name = grpcStatusName(code);
  }
}

/** An Export answer is a few bytes; gRPC's own default limit on what a client takes in is 4 MiB. */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

/** The gRPC code for an HTTP status that came without grpc-status (the table in grpc/doc/http-grpc-status-mapping.md). */
function statusOfHttp(httpStatus: number): number {
  switch (httpStatus) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

/** The gRPC code for a stream the peer reset with an HTTP/2 error code. */
function statusOfReset(rstCode: number): number {
  const { NGHTTP2_REFUSED_STREAM, NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_INADEQUATE_SECURITY } = http2.constants;
  if (rstCode === NGHTTP2_REFUSED_STREAM) return GrpcStatus.UNAVAILABLE;
  if (rstCode === NGHTTP2_CANCEL) return GrpcStatus.CANCELLED;
  if (rstCode === NGHTTP2_ENHANCE_YOUR_CALM) return GrpcStatus.RESOURCE_EXHAUSTED;
  if (rstCode === NGHTTP2_INADEQUATE_SECURITY) return GrpcStatus.PERMISSION_DENIED;
  return GrpcStatus.INTERNAL;
}

/** grpc-message is percent-encoded. */
function decodeStatusMessage(raw: string | string[] | undefined): string {
  const text = Array.isArray(raw) ? raw.join(', ') : (raw ?? '');
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The one message of a unary answer, without its 5-byte prefix (empty when the server sent none). */
function responseMessage(body: Buffer, encoding: string | undefined): Buffer {
  if (body.length === 0) return body;
  if (body.length < 5 || 5 + body.readUInt32BE(1) > body.length)
    throw new GrpcCallError(GrpcStatus.INTERNAL, `the answer's message is cut short (${body.length} bytes)`);
  const message = body.subarray(5, 5 + body.readUInt32BE(1));
  if (body[0] !== 1) return message;
  if (encoding !== 'gzip') throw new GrpcCallError(GrpcStatus.INTERNAL, `the answer is compressed with '${encoding ?? '(none named)'}', which was not offered`);
  return zlib.gunzipSync(message, { maxOutputLength: MAX_RESPONSE_BYTES });
}

/** A message as it goes on the wire: the 5-byte prefix and the (compressed, if the endpoint says so) body. */
export interface GrpcFrame {
  readonly prefix: Buffer;
  readonly body: Uint8Array;
}

export interface GrpcChannelOptions {
  endpoint: GrpcEndpoint;
  userAgent: string;
}

/**
 * One HTTP/2 connection to the endpoint, opened on the first call and again
 * after it closes, fails, is told to go away or a call on it timed out (a
 * connection that a middlebox dropped silently would otherwise eat every
 * later call until its deadline). It holds the process open only while a
 * call is in flight.
 */
export class GrpcChannel {
  private session: http2.ClientHttp2Session | undefined;
  /** Calls in flight per connection: a connection holds the process open only while it has some. */
  private readonly inFlight = new Map<http2.ClientHttp2Session, number>();
  /** After close(), calls fail at once: a retry that wakes after shutdown must not open a new connection. */
  private closed = false;
  /** Ends each call in flight with the given error (cancelCalls). */
  private readonly aborts = new Set<(error: GrpcCallError) => void>();

  get isClosed(): boolean {
    return this.closed;
  }

  constructor(private readonly options: GrpcChannelOptions) {}

  /** `message` framed for this endpoint, once for every attempt to send it (compressing is the costly part). */
  frame(message: Uint8Array): GrpcFrame {
    const gzip = this.options.endpoint.gzip;
    const body = gzip ? zlib.gzipSync(message) : message;
    const prefix = Buffer.allocUnsafe(5);
    prefix[0] = gzip ? 1 : 0;
    prefix.writeUInt32BE(body.length, 1);
    return { prefix, body };
  }

  /**
   * Sends `frame` and resolves with the answer's message; rejects with a
   * GrpcCallError, at the deadline at the latest. `onReleased` is called
   * once node no longer reads the frame's body (its write has completed or
   * been cancelled, and the stream is closed), which may be after the call
   * has settled: only then may its buffer be written over.
   */
  call(path: string, frame: GrpcFrame, deadline: number, onReleased?: () => void): Promise<Buffer> {
    const timeoutMs = Math.max(1, Math.ceil(deadline - Date.now()));
    const { endpoint, userAgent } = this.options;
    if (this.closed) {
      onReleased?.();
      return Promise.reject(new GrpcCallError(GrpcStatus.UNAVAILABLE, 'the exporter is shut down'));
    }
    let session: http2.ClientHttp2Session;
    let stream: http2.ClientHttp2Stream;
    try {
      session = this.connect();
      stream = session.request({
        ...endpoint.headers,
        ':method': 'POST',
        ':path': path,
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': `${timeoutMs}m`,
        'grpc-accept-encoding': 'identity,gzip',
        ...(endpoint.gzip ? { 'grpc-encoding': 'gzip' } : {}),
        'user-agent': userAgent,
      });
    } catch (err) {
      // TLS material node cannot use, a header it refuses: nothing was sent.
      onReleased?.();
      return Promise.reject(new GrpcCallError(GrpcStatus.INTERNAL, `cannot start a call to ${endpoint.url.host}: ${(err as Error).message}`));
    }
    this.track(session, +1);
    // Released when both have happened; a stream closed early (the server answered before reading everything) may
    // still have our bytes in a socket write.
    let releaseWaits = 2;
    const released = () => {
      if (--releaseWaits === 0) onReleased?.();
    };
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (error: GrpcCallError | undefined, answer?: Buffer) => {
        if (settled) return;
        settled = true;
        if (error) reject(error);
        else resolve(answer!);
      };
      let httpStatus: number | undefined;
      let encoding: string | undefined;
      let status: number | undefined;
      let details = '';
      let retryDelayMs: number | undefined;
      let failure: Error | undefined;
      let received = 0;
      const chunks: Buffer[] = [];
      const takeStatus = (headers: http2.IncomingHttpHeaders) => {
        const raw = headers['grpc-status'];
        if (raw === undefined) return;
        status = Number(raw);
        details = decodeStatusMessage(headers['grpc-message']);
        retryDelayMs = retryDelayFromStatusDetails(headers['grpc-status-details-bin']);
      };
      // Ends the call now, whatever the socket is doing: closing the stream alone waits for a write in progress,
      // which a collector that stopped reading (or a dropped connection) holds up for as long as TCP retries.
      // The connection goes too, so the next call connects afresh.
      const abort = (error: GrpcCallError) => {
        settle(error);
        this.drop(session);
      };
      this.aborts.add(abort);
      const timer = setTimeout(
        () => abort(new GrpcCallError(GrpcStatus.DEADLINE_EXCEEDED, `no answer from ${endpoint.url.host} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      stream.on('response', (headers) => {
        httpStatus = Number(headers[':status']);
        const named = headers['grpc-encoding'];
        encoding = typeof named === 'string' ? named : undefined;
        takeStatus(headers);
      });
      stream.on('trailers', takeStatus);
      stream.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > MAX_RESPONSE_BYTES) {
          failure ??= new GrpcCallError(GrpcStatus.RESOURCE_EXHAUSTED, `the answer from ${endpoint.url.host} is over ${MAX_RESPONSE_BYTES} bytes`);
          stream.close(http2.constants.NGHTTP2_CANCEL);
          return;
        }
        chunks.push(chunk);
      });
      stream.on('error', (err: Error) => (failure ??= err));
      stream.on('close', () => {
        clearTimeout(timer);
        this.aborts.delete(abort);
        this.track(session, -1);
        released();
        if (failure instanceof GrpcCallError) settle(failure);
        else if (status === undefined) settle(this.failureWithoutStatus(httpStatus, stream.rstCode, failure));
        else if (status !== GrpcStatus.OK) settle(new GrpcCallError(status, details, retryDelayMs));
        else {
          try {
            settle(undefined, responseMessage(Buffer.concat(chunks), encoding));
          } catch (err) {
            settle(err instanceof GrpcCallError ? err : new GrpcCallError(GrpcStatus.INTERNAL, `the answer cannot be read: ${(err as Error).message}`));
          }
        }
      });
      // One write of both: the 5-byte prefix alone would go out as its own segment. The message's write callback
      // comes when node is done with its memory, also when the write is cancelled.
      stream.cork();
      stream.write(frame.prefix);
      stream.write(frame.body, released);
      stream.end();
      stream.uncork();
    });
  }

  /** Closes the connection; calls in flight end first. */
  close(): Promise<void> {
    this.closed = true;
    const session = this.session;
    this.session = undefined;
    if (!session || session.closed || session.destroyed) return Promise.resolve();
    return new Promise((resolve) => session.close(() => resolve()));
  }

  /** Closes the channel and ends every call in flight now with `error`: what the agent's stop does at its deadline. */
  cancelCalls(error: GrpcCallError): void {
    this.closed = true;
    for (const abort of [...this.aborts]) abort(error);
    this.aborts.clear();
    if (this.session) this.drop(this.session);
  }

  private failureWithoutStatus(httpStatus: number | undefined, rstCode: number | undefined, failure: Error | undefined): GrpcCallError {
    const host = this.options.endpoint.url.host;
    if (httpStatus !== undefined && httpStatus !== 200)
      return new GrpcCallError(statusOfHttp(httpStatus), `${host} answered HTTP status ${httpStatus}, not gRPC`);
    // A failed connection (refused, reset, TLS) ends the stream with an error of its own: the transport is lost.
    const streamError = (failure as NodeJS.ErrnoException | undefined)?.code === 'ERR_HTTP2_STREAM_ERROR';
    if (failure && !streamError) return new GrpcCallError(GrpcStatus.UNAVAILABLE, `cannot reach ${host}: ${failure.message.trim()}`);
    // The server reset the stream (RST_STREAM); node raises no error for some codes (CANCEL).
    if (rstCode && rstCode !== http2.constants.NGHTTP2_NO_ERROR)
      return new GrpcCallError(statusOfReset(rstCode), `${host} reset the stream (HTTP/2 error ${rstCode})`);
    if (httpStatus === undefined) return new GrpcCallError(GrpcStatus.UNAVAILABLE, `${host} closed the stream without answering`);
    return new GrpcCallError(GrpcStatus.UNKNOWN, `${host} ended the call without a grpc-status`);
  }

  /** Counts calls on `session`; it holds the process open only while it has some. */
  private track(session: http2.ClientHttp2Session, delta: number): void {
    const count = (this.inFlight.get(session) ?? 0) + delta;
    if (count > 0) {
      if (delta > 0 && count === 1) session.ref();
      this.inFlight.set(session, count);
      return;
    }
    this.inFlight.delete(session);
    if (!session.destroyed) session.unref();
  }

  private connect(): http2.ClientHttp2Session {
    const current = this.session;
    if (current && !current.closed && !current.destroyed) return current;
    const { url, tls } = this.options.endpoint;
    const session = http2.connect(url.origin, tls ?? {});
    // Errors reach the calls through their streams; without a listener a refused connection would throw.
    session.on('error', () => {});
    // Without it, Nagle's algorithm holds a request's last small segment until the previous one is acknowledged,
    // which a delayed ACK can put off by 40 ms per call.
    session.once('connect', (_session, socket) => (socket as import('node:net').Socket).setNoDelay(true));
    session.on('goaway', () => this.forget(session));
    session.on('close', () => this.forget(session));
    session.unref();
    this.session = session;
    return session;
  }

  private forget(session: http2.ClientHttp2Session): void {
    if (this.session === session) this.session = undefined;
  }

  /** A call on it timed out: the next one connects afresh; other calls on it end now. */
  private drop(session: http2.ClientHttp2Session): void {
    this.forget(session);
    if (!session.destroyed) session.destroy();
  }
}
