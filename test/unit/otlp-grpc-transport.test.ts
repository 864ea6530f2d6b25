/**
 * Our OTLP/gRPC transport (node:http2) against a real gRPC server
 * (@grpc/grpc-js, the test receiver): requests arrive whole and decode, the
 * request buffer is reused only once a request is sent, headers, TLS with a
 * client certificate, gzip, retries, deadlines and an absent collector.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import { Metadata, status } from '@grpc/grpc-js';
import { ValueType } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider, BatchLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { AggregationTemporality, DataPointType, type ResourceMetrics, type SumMetricData } from '@opentelemetry/sdk-metrics';
import { ChunkingMetricExporter } from '../../src/exporters/chunking-exporter';
import { GrpcCallError, GrpcChannel, GrpcStatus } from '../../src/exporters/otlp/grpc-channel';
import { resolveGrpcEndpoint, type GrpcEndpoint } from '../../src/exporters/otlp/grpc-endpoint';
import { GrpcExportTransport } from '../../src/exporters/otlp/grpc-transport';
import type { RetryPolicy } from '../../src/exporters/otlp/retry';
import { OtlpLogExporter } from '../../src/exporters/otlp/log-exporter';
import { MetricsSerializer, OtlpMetricExporter } from '../../src/exporters/otlp/metric-exporter';
import { MetricsRequestEncoder } from '../../src/exporters/otlp/metrics-request';
import { makeTestCertificates } from '../../src/testbed/k8s-api-tls';
import { OtlpReceiver } from '../../src/testbed/otlp-receiver';
import { tempDir } from '../support/tmp';

const METRICS_PATH = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';
const FAST_RETRY: RetryPolicy = { maxRetries: 4, initialBackoffMs: 20, multiplier: 1.5 };
const NO_RETRY: RetryPolicy = { maxRetries: 0, initialBackoffMs: 20, multiplier: 1 };

/** One cumulative sum per metric name with `points` points, value = 1000 × metric + point. */
function metricsRequest(metricNames: string[], points: number): ResourceMetrics {
  const metrics: SumMetricData[] = metricNames.map((name, m) => ({
    descriptor: { name, description: '', unit: 'By', valueType: ValueType.INT },
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.SUM,
    isMonotonic: true,
    dataPoints: Array.from({ length: points }, (_, p) => ({
      startTime: [1_763_700_000, 0] as [number, number],
      endTime: [1_763_700_010, 0] as [number, number],
      attributes: { 'flowtel.test.point': p },
      value: 1000 * m + p,
    })),
  }));
  return { resource: resourceFromAttributes({ 'service.name': 'flowtel-test' }), scopeMetrics: [{ scope: { name: 'flowtel' }, metrics }] };
}

function exportOnce(exporter: { export(m: ResourceMetrics, cb: (r: ExportResult) => void): void }, request: ResourceMetrics): Promise<ExportResult> {
  return new Promise((resolve) => exporter.export(request, resolve));
}

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function plainEndpoint(receiver: OtlpReceiver, env: NodeJS.ProcessEnv = {}, headers: Record<string, string> = {}): GrpcEndpoint {
  return resolveGrpcEndpoint(receiver.endpoint, 'METRICS', headers, env);
}

describe('OTLP/gRPC transport (node:http2 against a grpc-js server)', () => {
  let receiver: OtlpReceiver;
  const closers: Array<() => Promise<void>> = [];

  beforeEach(async () => {
    receiver = await OtlpReceiver.start();
    closers.push(() => receiver.stop());
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  function transport(endpoint: GrpcEndpoint, retry: RetryPolicy = FAST_RETRY): GrpcExportTransport {
    const t = new GrpcExportTransport(new GrpcChannel({ endpoint, userAgent: 'flowtel/test' }), METRICS_PATH, undefined, retry);
    closers.push(() => t.shutdown());
    return t;
  }

  it('sends every chunk of an export, each written into the buffer of the one before, and the collector decodes every point', async () => {
    const exporter = new OtlpMetricExporter({ endpoint: plainEndpoint(receiver), userAgent: 'flowtel/test', timeoutMillis: 5000 });
    closers.push(() => exporter.shutdown());
    const chunking = new ChunkingMetricExporter(exporter, 50);
    // The buffers the requests were written into, seen as the exporter's serializer hands them over.
    const buffers: ArrayBufferLike[] = [];
    const serialize = MetricsSerializer.prototype.serializeRequest;
    MetricsSerializer.prototype.serializeRequest = function (this: MetricsSerializer, request: ResourceMetrics) {
      const bytes = serialize.call(this, request);
      if (bytes) buffers.push(bytes.buffer);
      return bytes;
    };
    let result: ExportResult;
    try {
      result = await exportOnce(chunking, metricsRequest(['a', 'b', 'c'], 60));
    } finally {
      MetricsSerializer.prototype.serializeRequest = serialize;
    }
    assert.equal(result.code, ExportResultCode.SUCCESS, result.error?.message);
    assert.equal(receiver.calls.length, 4, '180 points in requests of at most 50');
    assert.equal(buffers.length, 4);
    assert.equal(new Set(buffers).size, 1, 'each request went into the buffer the transport gave back');
    const points = receiver.metricExports.flatMap((e) => e.points);
    assert.equal(points.length, 180);
    // A request overwritten while it was still being sent would decode wrongly or carry another chunk's values.
    for (const [m, name] of ['a', 'b', 'c'].entries()) {
      const values = points.filter((p) => p.metric === name).map((p) => [p.attributes['flowtel.test.point'], p.value]);
      assert.deepEqual(
        values,
        Array.from({ length: 60 }, (_, p) => [p, 1000 * m + p]),
        `metric ${name}`,
      );
    }
  });

  it('reuses the request buffer only after the transport gave it back', () => {
    const serializer = new MetricsSerializer();
    const first = serializer.serializeRequest(metricsRequest(['a'], 10))!;
    serializer.release(first);
    const second = serializer.serializeRequest(metricsRequest(['b'], 10))!;
    assert.equal(second.buffer, first.buffer, 'a released buffer takes the next request');
    const secondBytes = Buffer.from(second);
    const third = serializer.serializeRequest(metricsRequest(['c'], 10))!;
    assert.notEqual(third.buffer, second.buffer, 'a request still lent is not written over');
    assert.deepEqual(Buffer.from(second), secondBytes);
    assert.deepEqual(Buffer.from(second), Buffer.from(new MetricsRequestEncoder().encode(metricsRequest(['b'], 10))));
  });

  it("sends the configured headers and OTEL_EXPORTER_OTLP_*HEADERS (the signal's winning), with user agent and deadline", async () => {
    const env = { OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=team%20a,x-both=generic', OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'x-both=metrics' };
    const t = transport(plainEndpoint(receiver, env, { 'X-Config': 'from-config' }));
    const result = await t.send(new MetricsRequestEncoder().encode(metricsRequest(['a'], 1)), 5000);
    assert.equal(result.status, 'success');
    const { metadata } = receiver.calls[0];
    assert.equal(metadata['x-tenant'], 'team a');
    assert.equal(metadata['x-both'], 'metrics');
    assert.equal(metadata['x-config'], 'from-config');
    assert.match(metadata['user-agent'], /^flowtel\/test/);
    assert.equal(receiver.metricExports.length, 1);
  });

  it('retries UNAVAILABLE until it succeeds, and does not retry INVALID_ARGUMENT', async () => {
    const t = transport(plainEndpoint(receiver));
    const body = new MetricsRequestEncoder().encode(metricsRequest(['a'], 3));
    receiver.failNext.push({ code: status.UNAVAILABLE, details: 'restarting' }, { code: status.UNAVAILABLE, details: 'restarting' });
    const retried = await t.send(body, 5000);
    assert.equal(retried.status, 'success');
    assert.equal(receiver.calls.length, 3);
    assert.equal(receiver.metricExports.length, 1);

    receiver.failNext.push({ code: status.INVALID_ARGUMENT, details: 'bad request, 100% encoded' });
    const refused = await t.send(body, 5000);
    assert.equal(refused.status, 'failure');
    const error = (refused as { error: Error }).error;
    assert.ok(error instanceof GrpcCallError);
    assert.equal(error.code, GrpcStatus.INVALID_ARGUMENT);
    assert.equal(error.details, 'bad request, 100% encoded', 'grpc-message is percent-decoded');
    assert.equal(receiver.calls.length, 4, 'no retry');
  });

  it('retries RESOURCE_EXHAUSTED only when the collector sends RetryInfo, after the delay it asks for', async () => {
    const t = transport(plainEndpoint(receiver));
    const body = new MetricsRequestEncoder().encode(metricsRequest(['a'], 1));
    receiver.failNext.push({ code: status.RESOURCE_EXHAUSTED, details: 'over quota' });
    const refused = await t.send(body, 5000);
    assert.equal(refused.status, 'failure');
    assert.equal(receiver.calls.length, 1, 'no RetryInfo: no retry');

    // google.rpc.Status { code 8, details [Any { RetryInfo { retry_delay { nanos 400,000,000 } } }] }
    const duration = Buffer.from([0x10, 0x80, 0x88, 0xde, 0xbe, 0x01]);
    const retryInfo = Buffer.concat([Buffer.from([0x0a, duration.length]), duration]);
    const typeUrl = Buffer.from('type.googleapis.com/google.rpc.RetryInfo');
    const any = Buffer.concat([Buffer.from([0x0a, typeUrl.length]), typeUrl, Buffer.from([0x12, retryInfo.length]), retryInfo]);
    const metadata = new Metadata();
    metadata.set('grpc-status-details-bin', Buffer.concat([Buffer.from([0x08, 8, 0x1a, any.length]), any]));
    receiver.failNext.push({ code: status.RESOURCE_EXHAUSTED, details: 'over quota, retry later', metadata });
    const started = Date.now();
    const retried = await t.send(body, 5000);
    const waited = Date.now() - started;
    assert.equal(retried.status, 'success');
    assert.equal(receiver.calls.length, 3);
    assert.ok(waited >= 380 && waited < 2000, `waited ${waited} ms for a 400 ms RetryInfo (backoff here is 20 ms)`);
  });

  it('ends a call the collector never answers at its deadline, and the next call succeeds on a new connection', async () => {
    const t = transport(plainEndpoint(receiver), NO_RETRY);
    const body = new MetricsRequestEncoder().encode(metricsRequest(['a'], 1));
    receiver.stall = true;
    const started = Date.now();
    const result = await t.send(body, 300);
    const took = Date.now() - started;
    assert.equal(result.status, 'failure');
    assert.equal((result as unknown as { error: GrpcCallError }).error.code, GrpcStatus.DEADLINE_EXCEEDED);
    assert.ok(took >= 250 && took < 2000, `ended after ${took} ms for a 300 ms deadline`);
    receiver.stall = false;
    assert.equal((await t.send(body, 5000)).status, 'success');
    assert.equal(receiver.metricExports.length, 1);
    assert.notEqual(receiver.calls[1].peer, receiver.calls[0].peer, 'the call after the timeout came from a new connection (another client port)');
  });

  it('reports a collector that is not listening as UNAVAILABLE, retrying within the deadline only', async () => {
    const endpoint = resolveGrpcEndpoint(`http://127.0.0.1:${await closedPort()}`, 'METRICS', {}, {});
    const t = transport(endpoint, { maxRetries: 4, initialBackoffMs: 200, multiplier: 2 });
    const started = Date.now();
    const result = await t.send(new MetricsRequestEncoder().encode(metricsRequest(['a'], 1)), 500);
    const took = Date.now() - started;
    assert.equal(result.status, 'failure');
    const error = (result as unknown as { error: GrpcCallError }).error;
    assert.equal(error.code, GrpcStatus.UNAVAILABLE);
    assert.match(error.message, /ECONNREFUSED/);
    assert.ok(took < 1000, `gave up after ${took} ms: a retry must not start past the 500 ms deadline`);
  });

  it('compresses with gzip when OTEL_EXPORTER_OTLP_COMPRESSION=gzip', async () => {
    const endpoint = plainEndpoint(receiver, { OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip' });
    assert.equal(endpoint.gzip, true);
    const plain = new MetricsRequestEncoder().encode(metricsRequest(['a'], 200));
    const result = await transport(endpoint).send(plain, 5000);
    assert.equal(result.status, 'success');
    assert.equal(receiver.metricExports[0].points.length, 200, 'the gRPC server decompressed and decoded the request');

    // grpc-js hides its grpc-* headers and the frame, so a bare HTTP/2 server shows what went on the wire.
    const wire = http2.createServer();
    const seen = new Promise<{ headers: http2.IncomingHttpHeaders; body: Buffer }>((resolve) => {
      wire.on('stream', (stream, headers) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
          stream.end();
          resolve({ headers, body: Buffer.concat(chunks) });
        });
      });
    });
    await new Promise<void>((resolve) => wire.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => wire.close(() => resolve())));
    const wireEndpoint = resolveGrpcEndpoint(
      `http://127.0.0.1:${(wire.address() as net.AddressInfo).port}`,
      'METRICS',
      {},
      { OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip' },
    );
    assert.equal((await transport(wireEndpoint).send(plain, 5000)).status, 'success');
    const { headers, body } = await seen;
    assert.equal(headers['grpc-encoding'], 'gzip');
    assert.equal(body[0], 1, 'the compressed-flag byte');
    assert.equal(body.readUInt32BE(1), body.length - 5);
    assert.ok(body.length - 5 < plain.length, `${body.length - 5} compressed bytes for ${plain.length}`);
    assert.deepEqual(zlib.gunzipSync(body.subarray(5)), Buffer.from(plain));
  });

  it('sends a 13 MB request whole, and refuses an answer over 4 MiB', async () => {
    // 240,000 points: about five times the largest request the chunking exporter makes.
    const big = new MetricsRequestEncoder().encode(metricsRequest(['big'], 240_000));
    assert.ok(big.length > 12e6, `${big.length} bytes`);
    const sent = await transport(plainEndpoint(receiver)).send(big, 30_000);
    assert.equal(sent.status, 'success', (sent as { error?: Error }).error?.message);
    assert.equal(receiver.metricExports[0].points.length, 240_000);

    const flood = http2.createServer();
    flood.on('stream', (stream) => {
      stream.on('data', () => {});
      stream.on('end', () => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
        stream.end(Buffer.alloc(5 * 1024 * 1024));
      });
    });
    await new Promise<void>((resolve) => flood.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => flood.close(() => resolve())));
    const endpoint = resolveGrpcEndpoint(`http://127.0.0.1:${(flood.address() as net.AddressInfo).port}`, 'METRICS', {}, {});
    const result = await transport(endpoint, NO_RETRY).send(big.subarray(0, 100), 5000);
    assert.equal(result.status, 'failure');
    assert.equal((result as unknown as { error: GrpcCallError }).error.code, GrpcStatus.RESOURCE_EXHAUSTED);
  });

  it('fails a call at once after shutdown, also one a retry would make', async () => {
    const t = transport(plainEndpoint(receiver), { maxRetries: 4, initialBackoffMs: 300, multiplier: 1 });
    const body = new MetricsRequestEncoder().encode(metricsRequest(['a'], 1));
    receiver.failNext.push({ code: status.UNAVAILABLE, details: 'restarting' });
    const started = Date.now();
    const pending = t.send(body, 5000); // fails once, then waits about 300 ms to retry
    while (receiver.calls.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await t.shutdown();
    const result = await pending;
    assert.equal(result.status, 'failure');
    assert.ok(Date.now() - started < 1000, 'no retries after shutdown');
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(receiver.calls.length, 1, 'no call after shutdown');
    const later = await t.send(body, 5000);
    assert.equal(later.status, 'failure');
    assert.match((later as unknown as { error: Error }).error.message, /shut down/);
  });

  it('ends a call at its deadline when the collector accepted the connection and never speaks HTTP/2, and lets go of the request', async () => {
    const silent = net.createServer(() => {}); // accepts, never reads or writes
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const sockets: net.Socket[] = [];
    silent.on('connection', (socket) => sockets.push(socket));
    closers.push(
      () =>
        new Promise((resolve) => {
          for (const s of sockets) s.destroy();
          silent.close(() => resolve());
        }),
    );
    const endpoint = resolveGrpcEndpoint(`http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`, 'METRICS', {}, {});
    let released = 0;
    const body = new MetricsRequestEncoder().encode(metricsRequest(['a'], 20_000)); // about 1 MB: more than a stream window
    const t = new GrpcExportTransport(new GrpcChannel({ endpoint, userAgent: 'flowtel/test' }), METRICS_PATH, () => released++, NO_RETRY);
    closers.push(() => t.shutdown());
    const started = Date.now();
    const result = await t.send(body, 400);
    const took = Date.now() - started;
    assert.equal(result.status, 'failure');
    assert.equal((result as unknown as { error: GrpcCallError }).error.code, GrpcStatus.DEADLINE_EXCEEDED);
    assert.ok(took < 1500, `settled after ${took} ms for a 400 ms deadline`);
    for (let waited = 0; released === 0 && waited < 2000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(released, 1, 'the request buffer was given back once node let go of it');
  });

  it('maps what an HTTP/2 server answers to gRPC statuses: trailers-only, HTTP errors, stream resets, compressed and cut-short answers', async () => {
    type Answer = (stream: http2.ServerHttp2Stream) => void;
    let answer: Answer = () => {};
    const server = http2.createServer();
    server.on('stream', (stream) => {
      stream.on('error', () => {}); // the resets below also end the server's side of the stream with an error
      stream.on('data', () => {});
      stream.on('end', () => answer(stream));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
    const endpoint = resolveGrpcEndpoint(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, 'METRICS', {}, {});
    const t = transport(endpoint, NO_RETRY);
    const body = new MetricsRequestEncoder().encode(metricsRequest(['a'], 1));
    const outcome = async (a: Answer) => {
      answer = a;
      const result = await t.send(body, 3000);
      return result.status === 'success' ? { ok: Buffer.from(result.data ?? []) } : { error: (result as unknown as { error: GrpcCallError }).error };
    };
    const grpcHeaders = { ':status': 200, 'content-type': 'application/grpc' };
    const framed = (message: Buffer, compressed: boolean) => {
      const prefix = Buffer.alloc(5);
      prefix[0] = compressed ? 1 : 0;
      prefix.writeUInt32BE(message.length, 1);
      return Buffer.concat([prefix, message]);
    };
    const withTrailers = (headers: http2.OutgoingHttpHeaders, data: Buffer, trailers: http2.OutgoingHttpHeaders) => (stream: http2.ServerHttp2Stream) => {
      stream.respond(headers, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers(trailers));
      stream.end(data);
    };

    const trailersOnly = await outcome((s) => s.respond({ ...grpcHeaders, 'grpc-status': '16', 'grpc-message': 'no%20token' }, { endStream: true }));
    assert.equal(trailersOnly.error?.code, GrpcStatus.UNAUTHENTICATED);
    assert.equal(trailersOnly.error?.details, 'no token');
    assert.equal(trailersOnly.error?.name, 'UNAUTHENTICATED', 'the exporter metrics take error.type from the name');

    const unavailable = await outcome((s) => s.respond({ ':status': 503, 'content-type': 'text/plain' }, { endStream: true }));
    assert.equal(unavailable.error?.code, GrpcStatus.UNAVAILABLE);
    assert.match(unavailable.error!.message, /HTTP status 503/);

    const refused = await outcome((s) => s.close(http2.constants.NGHTTP2_REFUSED_STREAM));
    assert.equal(refused.error?.code, GrpcStatus.UNAVAILABLE);
    const cancelled = await outcome((s) => s.close(http2.constants.NGHTTP2_CANCEL));
    assert.equal(cancelled.error?.code, GrpcStatus.CANCELLED);

    const message = Buffer.from('a response message');
    const gzipped = await outcome(withTrailers({ ...grpcHeaders, 'grpc-encoding': 'gzip' }, framed(zlib.gzipSync(message), true), { 'grpc-status': '0' }));
    assert.deepEqual(gzipped.ok, message);
    const plain = await outcome(withTrailers(grpcHeaders, framed(message, false), { 'grpc-status': '0' }));
    assert.deepEqual(plain.ok, message);
    const cut = await outcome(withTrailers(grpcHeaders, framed(message, false).subarray(0, 10), { 'grpc-status': '0' }));
    assert.equal(cut.error?.code, GrpcStatus.INTERNAL);
    const noStatus = await outcome(withTrailers(grpcHeaders, Buffer.alloc(0), {}));
    assert.equal(noStatus.error?.code, GrpcStatus.UNKNOWN);
  });

  it('exports log records with the OpenTelemetry logs SDK', async () => {
    const exporter = new OtlpLogExporter({ endpoint: resolveGrpcEndpoint(receiver.endpoint, 'LOGS', {}, {}), userAgent: 'flowtel/test', timeoutMillis: 5000 });
    const provider = new LoggerProvider({ processors: [new BatchLogRecordProcessor({ exporter })] });
    closers.push(() => provider.shutdown());
    provider.getLogger('flowtel').emit({ eventName: 'flowtel.test', body: 'hello', attributes: { 'network.peer.port': 5201 } });
    await provider.forceFlush();
    assert.equal(receiver.logRecords.length, 1);
    assert.equal(receiver.logRecords[0].eventName, 'flowtel.test');
    assert.equal(receiver.logRecords[0].attributes['network.peer.port'], 5201);
    assert.equal(receiver.calls[0].path, '/opentelemetry.proto.collector.logs.v1.LogsService/Export');
  });
});

describe('OTLP/gRPC over TLS', () => {
  const certs = makeTestCertificates({ hosts: ['127.0.0.1'] });
  const dir = tempDir('otlp-tls');
  const file = (name: string, text: string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    return p;
  };
  const env = {
    OTEL_EXPORTER_OTLP_CERTIFICATE: file('ca.crt', certs.caCert),
    OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: file('tls.crt', certs.clientCert),
    OTEL_EXPORTER_OTLP_CLIENT_KEY: file('tls.key', certs.clientKey),
  };
  let receiver: OtlpReceiver;
  before(async () => {
    receiver = await OtlpReceiver.start(0, { cert: certs.serverCert, key: certs.serverKey, clientCa: certs.caCert });
  });
  after(() => receiver.stop());

  async function send(environment: NodeJS.ProcessEnv): Promise<{ status: string; error?: Error }> {
    const channel = new GrpcChannel({ endpoint: resolveGrpcEndpoint(receiver.endpoint, 'METRICS', {}, environment), userAgent: 'flowtel/test' });
    const t = new GrpcExportTransport(channel, METRICS_PATH, undefined, NO_RETRY);
    try {
      return (await t.send(new MetricsRequestEncoder().encode(metricsRequest(['tls'], 2)), 3000)) as { status: string; error?: Error };
    } finally {
      await t.shutdown();
    }
  }

  it('trusts the collector by OTEL_EXPORTER_OTLP_CERTIFICATE and presents the client certificate', async () => {
    assert.match(receiver.endpoint, /^https:/);
    const result = await send(env);
    assert.equal(result.status, 'success', result.error?.message);
    assert.equal(receiver.metricExports.at(-1)?.points.length, 2);
  });

  it('fails without the client certificate the collector requires, and against a CA it was not given', async () => {
    const before = receiver.metricExports.length;
    const noClient = await send({ OTEL_EXPORTER_OTLP_CERTIFICATE: env.OTEL_EXPORTER_OTLP_CERTIFICATE });
    assert.equal(noClient.status, 'failure');
    const untrusted = await send({
      OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: env.OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE,
      OTEL_EXPORTER_OTLP_CLIENT_KEY: env.OTEL_EXPORTER_OTLP_CLIENT_KEY,
    });
    assert.equal(untrusted.status, 'failure');
    assert.match(untrusted.error!.message, /certificate/i);
    assert.equal(receiver.metricExports.length, before, 'nothing arrived');
  });
});

describe('OTLP/gRPC endpoint settings', () => {
  it('names the variable, the value and what was expected for bad TLS files, a half client pair, compression and headers', () => {
    const url = 'https://collector:4317';
    assert.throws(() => resolveGrpcEndpoint(url, 'METRICS', {}, { OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE: '/nonexistent/ca.crt' }), {
      name: 'ConfigError',
      message:
        'invalid configuration: OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE = "/nonexistent/ca.crt" (from environment variable OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE): ' +
        'expected a readable PEM file with the CA certificates that sign the collector, a regular file of at most 1048576 bytes (it cannot be opened: ENOENT)',
    });
    const dir = tempDir('otlp-env');
    const cert = path.join(dir, 'tls.crt');
    fs.writeFileSync(cert, 'x');
    assert.throws(
      () => resolveGrpcEndpoint(url, 'LOGS', {}, { OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: cert }),
      /OTEL_EXPORTER_OTLP_CLIENT_KEY = \(missing\) .*expected a PEM file, set together with OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE/,
    );
    assert.throws(
      () => resolveGrpcEndpoint(url, 'METRICS', {}, { OTEL_EXPORTER_OTLP_COMPRESSION: 'zstd' }),
      /OTEL_EXPORTER_OTLP_COMPRESSION = "zstd" .*expected gzip or none/,
    );
    assert.throws(
      () => resolveGrpcEndpoint(url, 'METRICS', { 'trace-bin': 'x' }, {}),
      /exporters.otlp.headers = "trace-bin" .*expected an ordinary text header name/,
    );
    assert.throws(
      () => resolveGrpcEndpoint(url, 'METRICS', {}, { OTEL_EXPORTER_OTLP_HEADERS: 'te=x' }),
      /"te" \(from environment variable OTEL_EXPORTER_OTLP_HEADERS\)/,
    );
    assert.throws(
      () => resolveGrpcEndpoint(url, 'METRICS', {}, { OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY: cert }),
      /OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE = \(missing\) .*set together with OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY/,
    );
    assert.throws(
      () => resolveGrpcEndpoint(url, 'METRICS', {}, { OTEL_EXPORTER_OTLP_CERTIFICATE: cert }),
      /OTEL_EXPORTER_OTLP_CERTIFICATE = ".*tls.crt" .*expected PEM files node can use for TLS/,
    );
    const certs = makeTestCertificates();
    const other = makeTestCertificates();
    const write = (name: string, text: string) => {
      fs.writeFileSync(path.join(dir, name), text);
      return path.join(dir, name);
    };
    assert.throws(
      () =>
        resolveGrpcEndpoint(
          url,
          'METRICS',
          {},
          {
            OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE: write('client.crt', certs.clientCert),
            OTEL_EXPORTER_OTLP_CLIENT_KEY: write('other.key', other.clientKey),
          },
        ),
      /OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE, OTEL_EXPORTER_OTLP_CLIENT_KEY = .*expected PEM files node can use for TLS/,
      "a key that is not the certificate's",
    );
    assert.throws(() => resolveGrpcEndpoint(url, 'METRICS', { Connection: 'close' }, {}), /exporters.otlp.headers = "connection"/);
    assert.throws(
      () => resolveGrpcEndpoint('unix:///run/otel.sock', 'METRICS', {}, {}),
      /exporters.otlp.endpoint = "unix:\/\/\/run\/otel.sock" .*expected an http:\/\/ or https:\/\/ URL/,
    );
  });

  it("takes the signal's own variable over the generic one, and ignores TLS files for http://", () => {
    const endpoint = resolveGrpcEndpoint(
      'http://collector:4317',
      'LOGS',
      {},
      {
        OTEL_EXPORTER_OTLP_COMPRESSION: 'none',
        OTEL_EXPORTER_OTLP_LOGS_COMPRESSION: 'gzip',
        OTEL_EXPORTER_OTLP_CERTIFICATE: '/nonexistent/ca.crt',
      },
    );
    assert.equal(endpoint.gzip, true);
    assert.equal(endpoint.tls, undefined);
  });
});
