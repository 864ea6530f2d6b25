/**
 * OTLP/HTTP transport and the settings resolution of every
 * OTEL_EXPORTER_OTLP_* variable, against real HTTP servers on loopback.
 * (The whole path through a real OpenTelemetry Collector is in
 * test/e2e/collector.test.ts.)
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import zlib from 'node:zlib';
import { defaultConfig } from '../../src/config/config';
import { ExportClosing } from '../../src/exporters/otlp/closing';
import { HttpExportError, HttpExportTransport, retryAfterMs } from '../../src/exporters/otlp/http-transport';
import { retryDelayFromStatusDetails } from '../../src/exporters/otlp/retry-info';
import { describeSignal, resolveOtlpSettings } from '../../src/exporters/otlp/signal-settings';

interface Seen {
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  at: number;
}

/** An HTTP server on loopback answering each request with the next of `answers` (the last one repeats). */
async function server(
  answers: Array<{ status: number; headers?: Record<string, string>; body?: string | Buffer } | 'silent'>,
): Promise<{ url: string; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const srv = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ headers: req.headers, body: Buffer.concat(chunks), at: Date.now() });
      const answer = answers[Math.min(seen.length - 1, answers.length - 1)];
      if (answer === 'silent') return;
      res.writeHead(answer.status, answer.headers ?? {});
      res.end(answer.body ?? '');
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1/metrics`,
    seen,
    close: () => {
      srv.closeAllConnections();
      return new Promise((resolve) => srv.close(() => resolve()));
    },
  };
}

const FAST = { maxRetries: 4, initialBackoffMs: 50, multiplier: 1.5 };

function transport(
  url: string,
  options: { gzip?: boolean; headers?: Record<string, string>; closing?: ExportClosing; onSent?: (r: Uint8Array) => void } = {},
): HttpExportTransport {
  return new HttpExportTransport(
    { url: new URL(url), tls: undefined, headers: options.headers ?? {}, gzip: options.gzip ?? false },
    'application/x-protobuf',
    'flowtel/test',
    options.onSent,
    FAST,
    options.closing,
  );
}

describe('OTLP/HTTP transport', () => {
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });

  it('POSTs the request with its content type, gzip, headers and user agent, and hands back the answer body', async () => {
    const s = await server([{ status: 200, body: Buffer.from([0x0a, 0x00]) }]);
    closers.push(s.close);
    const request = Buffer.from('a request body, about as long as a small OTLP message');
    let released: Uint8Array | undefined;
    const result = await transport(s.url, { gzip: true, headers: { 'x-tenant': 't1' }, onSent: (r) => (released = r) }).send(request, 5000);
    assert.equal(result.status, 'success');
    assert.deepEqual(Buffer.from((result as { data: Uint8Array }).data), Buffer.from([0x0a, 0x00]));
    const [{ headers, body }] = s.seen;
    assert.equal(headers['content-type'], 'application/x-protobuf');
    assert.equal(headers['content-encoding'], 'gzip');
    assert.equal(headers['x-tenant'], 't1');
    assert.equal(headers['user-agent'], 'flowtel/test');
    assert.deepEqual(zlib.gunzipSync(body), request);
    assert.equal(released, request, 'the request buffer went back to the encoder');
  });

  it('retries 503 after the delay Retry-After asks for, then succeeds', async () => {
    const s = await server([{ status: 503, headers: { 'retry-after': '1' } }, { status: 200 }]);
    closers.push(s.close);
    const result = await transport(s.url).send(Buffer.from('x'), 10_000);
    assert.equal(result.status, 'success');
    assert.equal(s.seen.length, 2);
    const waited = s.seen[1].at - s.seen[0].at;
    assert.ok(waited >= 950 && waited < 3000, `waited ${waited} ms for Retry-After: 1`);
  });

  it('does not retry 400: fails at once with the status and the body text', async () => {
    const s = await server([{ status: 400, body: 'bad payload (test)' }]);
    closers.push(s.close);
    const result = await transport(s.url).send(Buffer.from('x'), 10_000);
    assert.equal(result.status, 'failure');
    const error = (result as { error: HttpExportError }).error;
    assert.equal(error.statusCode, 400);
    assert.match(error.message, /answered HTTP 400: bad payload \(test\)/);
    assert.equal(s.seen.length, 1);
  });

  it('retries a refused connection with backoff until the deadline leaves no room', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const started = Date.now();
    const result = await transport(`http://127.0.0.1:${port}/v1/logs`).send(Buffer.from('x'), 2000);
    assert.equal(result.status, 'failure');
    assert.match((result as { error: Error }).error.message, /cannot reach 127\.0\.0\.1:\d+: .*ECONNREFUSED/);
    assert.ok(Date.now() - started < 2500);
  });

  it('a silent collector: the attempt ends at the deadline', async () => {
    const s = await server(['silent']);
    closers.push(s.close);
    const started = Date.now();
    const result = await transport(s.url).send(Buffer.from('x'), 600);
    const ms = Date.now() - started;
    assert.equal(result.status, 'failure');
    assert.match((result as { error: Error }).error.message, /no answer from 127\.0\.0\.1:\d+ within \d+ ms/);
    assert.ok(ms >= 550 && ms < 1500, `ended after ${ms} ms`);
  });

  it("the agent's stop cuts an attempt in flight at the stop's deadline, and nothing is retried", async () => {
    const s = await server(['silent']);
    closers.push(s.close);
    const closing = new ExportClosing();
    const sending = transport(s.url, { closing }).send(Buffer.from('x'), 30_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    closing.begin(Date.now() + 300);
    const result = await sending;
    assert.equal(result.status, 'failure');
    assert.match((result as { error: Error }).error.message, /shutdown budget ran out/);
    assert.ok(Date.now() - started < 1000);
    assert.equal(s.seen.length, 1);
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    assert.equal(retryAfterMs('3'), 3000);
    assert.equal(retryAfterMs(new Date(10_000 + 5000).toUTCString(), 10_000), 5000);
    assert.equal(retryAfterMs('soon'), undefined);
    assert.equal(retryAfterMs(undefined), undefined);
  });
});

describe('gRPC RetryInfo', () => {
  /** A google.rpc.Status with one RetryInfo detail of `seconds` and `nanos`, base64 as in grpc-status-details-bin. */
  function statusWithRetryInfo(seconds: number, nanos: number): string {
    const duration = Buffer.from([0x08, seconds, 0x10, ...varint(nanos)]);
    const retryInfo = Buffer.concat([Buffer.from([0x0a, duration.length]), duration]);
    const typeUrl = Buffer.from('type.googleapis.com/google.rpc.RetryInfo');
    const any = Buffer.concat([Buffer.from([0x0a, typeUrl.length]), typeUrl, Buffer.from([0x12, retryInfo.length]), retryInfo]);
    const message = Buffer.from('slow down');
    return Buffer.concat([Buffer.from([0x08, 8, 0x12, message.length]), message, Buffer.from([0x1a, any.length]), any]).toString('base64');
  }
  function varint(n: number): number[] {
    const out: number[] = [];
    for (; n >= 0x80; n = Math.floor(n / 128)) out.push((n % 128) | 0x80);
    out.push(n);
    return out;
  }

  it('reads the delay a server asks for, and nothing from a trailer without one or a damaged one', () => {
    assert.equal(retryDelayFromStatusDetails(statusWithRetryInfo(2, 500_000_000)), 2500);
    assert.equal(retryDelayFromStatusDetails(Buffer.from([0x08, 8]).toString('base64')), undefined);
    assert.equal(retryDelayFromStatusDetails(Buffer.from([0x1a, 0x7f, 0x01]).toString('base64')), undefined);
    assert.equal(retryDelayFromStatusDetails(undefined), undefined);
  });
});

describe('OTLP settings from the config and the OTEL_EXPORTER_OTLP_* variables', () => {
  const otlp = (over: Partial<ReturnType<typeof defaultConfig>['exporters']['otlp']> = {}) => ({ ...defaultConfig('/tmp').exporters.otlp, ...over });

  it('OTLP/HTTP appends v1/metrics and v1/logs to the generic endpoint; a per-signal endpoint is used as it is', () => {
    const s = resolveOtlpSettings(otlp({ endpoint: 'http://collector:4318/otlp/', protocol: 'http/protobuf' }), {
      OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: 'http://loki:3100/otlp/v1/logs',
    });
    assert.equal(s.metrics?.url.href, 'http://collector:4318/otlp/v1/metrics');
    assert.equal(s.logs?.url.href, 'http://loki:3100/otlp/v1/logs');
    assert.equal(s.logs?.endpointSource, 'environment variable OTEL_EXPORTER_OTLP_LOGS_ENDPOINT');
  });

  it('per-signal protocol, timeout, compression and headers win over the generic ones', () => {
    const s = resolveOtlpSettings(otlp({ endpoint: 'http://collector:4317' }), {
      OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_TIMEOUT: '7000',
      OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: '9000',
      OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
      OTEL_EXPORTER_OTLP_LOGS_COMPRESSION: 'none',
      OTEL_EXPORTER_OTLP_HEADERS: 'a=1',
      OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'a=2',
    });
    assert.equal(s.metrics?.protocol, 'grpc');
    assert.equal(s.logs?.protocol, 'http/json');
    assert.equal(s.logs?.url.href, 'http://collector:4317/v1/logs');
    assert.deepEqual([s.metrics?.timeoutMs, s.logs?.timeoutMs], [9000, 7000]);
    assert.deepEqual([s.metrics?.gzip, s.logs?.gzip], [true, false]);
    assert.deepEqual([s.metrics?.headers.a, s.logs?.headers.a], ['2', '1']);
    assert.match(
      describeSignal(s.logs!),
      /^logs: OTLP http\/json to http:\/\/collector:4317\/v1\/logs \(no compression, timeout 7000 ms, plaintext, headers a;/,
    );
  });

  it('a scheme-less gRPC signal endpoint is TLS, or plaintext with INSECURE=true', () => {
    assert.equal(resolveOtlpSettings(otlp(), { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'collector:4317' }).metrics?.url.protocol, 'https:');
    const insecure = resolveOtlpSettings(otlp(), { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'collector:4317', OTEL_EXPORTER_OTLP_INSECURE: 'true' });
    assert.equal(insecure.metrics?.url.href, 'http://collector:4317/');
    assert.equal(insecure.logs, undefined, 'logs have no endpoint: not over OTLP');
  });

  it('refuses a value it does not understand, naming the variable, the value and what was expected', () => {
    const cases: Array<[NodeJS.ProcessEnv, RegExp]> = [
      [{ OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http' }, /OTEL_EXPORTER_OTLP_METRICS_PROTOCOL = "http".*one of grpc, http\/protobuf, http\/json/],
      [{ OTEL_EXPORTER_OTLP_TIMEOUT: '10s' }, /OTEL_EXPORTER_OTLP_TIMEOUT = "10s".*milliseconds/],
      [
        { OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: 'ftp://x/v1/logs', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' },
        /OTEL_EXPORTER_OTLP_LOGS_ENDPOINT = "ftp:\/\/x\/v1\/logs"/,
      ],
      [{ OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'c:4317', OTEL_EXPORTER_OTLP_INSECURE: 'yes' }, /OTEL_EXPORTER_OTLP_INSECURE = "yes".*true or false/],
    ];
    for (const [env, message] of cases) assert.throws(() => resolveOtlpSettings(otlp({ endpoint: 'http://c:4317', protocol: 'http/protobuf' }), env), message);
  });
});
