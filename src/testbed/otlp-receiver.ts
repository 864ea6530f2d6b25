/**
 * An OTLP/gRPC receiver for tests, `flowtel demo` and benchmarks: a real
 * gRPC server on the two Export methods, decoding requests with protobufjs
 * and a proto subset we keep ourselves (no npm package ships the OTLP protos).
 */
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

export type AttributeValue = string | number | boolean | null | AttributeValue[];
export type AttributeMap = Record<string, AttributeValue>;

export interface ReceivedDataPoint {
  metric: string;
  unit: string;
  kind: 'sum' | 'gauge' | 'histogram';
  monotonic?: boolean;
  temporality?: 'delta' | 'cumulative';
  attributes: AttributeMap;
  resource: AttributeMap;
  value: number;
  /** Histograms only. */
  count?: number;
  bucketCounts?: number[];
  explicitBounds?: number[];
  timeUnixNano: bigint;
}

export interface ReceivedLogRecord {
  eventName: string;
  severityText: string;
  body: AttributeValue;
  attributes: AttributeMap;
  resource: AttributeMap;
  timeUnixNano: bigint;
  traceId: string;
  spanId: string;
}

export interface MetricsExport {
  receivedAt: number;
  points: ReceivedDataPoint[];
}

const METRICS_PATH = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';
const LOGS_PATH = '/opentelemetry.proto.collector.logs.v1.LogsService/Export';

function protoFile(): string {
  // Next to this file in src/, or copied next to the compiled file in dist/.
  const here = path.join(__dirname, 'otlp-subset.proto');
  if (fs.existsSync(here)) return here;
  return path.resolve(__dirname, '..', '..', '..', 'src', 'testbed', 'otlp-subset.proto');
}

interface RawKeyValue {
  key: string;
  value?: RawAnyValue;
}
interface RawAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number | string;
  doubleValue?: number;
  arrayValue?: { values?: RawAnyValue[] };
  kvlistValue?: { values?: RawKeyValue[] };
  bytesValue?: Buffer;
}

function anyValue(v: RawAnyValue | undefined): AttributeValue {
  if (!v) return null;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(anyValue);
  if (v.bytesValue) return Buffer.from(v.bytesValue).toString('hex');
  return null;
}

function attributes(list: RawKeyValue[] | undefined): AttributeMap {
  const out: AttributeMap = {};
  for (const kv of list ?? []) out[kv.key] = anyValue(kv.value);
  return out;
}

/**
 * ExportMetricsServiceResponse { partial_success (1): { rejected_data_points (1): int64, error_message (2): string } };
 * the logs response has the same shape.
 */
function partialSuccessResponse(rejected: number, message: string): Buffer {
  const varint = (n: number): number[] => {
    const out: number[] = [];
    for (; n >= 0x80; n = Math.floor(n / 128)) out.push((n % 128) | 0x80);
    out.push(n);
    return out;
  };
  const text = Buffer.from(message);
  const inner = Buffer.from([0x08, ...varint(rejected), 0x12, ...varint(text.length), ...text]);
  return Buffer.from([0x0a, ...varint(inner.length), ...inner]);
}

function nanos(v: unknown): bigint {
  return v === undefined || v === null ? 0n : BigInt(String(v));
}

export class OtlpReceiver {
  readonly metricExports: MetricsExport[] = [];
  readonly logRecords: ReceivedLogRecord[] = [];
  private server: grpc.Server | undefined;
  private readonly metricsType: protobuf.Type;
  private readonly logsType: protobuf.Type;
  /** Each Export call takes the first of these, if any, and fails with it (a collector that fails now and then). */
  readonly failNext: Array<{ code: grpc.status; details: string; metadata?: grpc.Metadata }> = [];
  /** When set, Export calls are never answered (a collector that hangs); the client's deadline ends them. */
  stall = false;
  /** While set, every Export call fails with it (a collector that is down behind a proxy that answers). */
  failing: { code: grpc.status; details: string } | undefined;
  /** Each metrics Export call takes the first of these, if any, and answers with that partial success. */
  readonly metricsPartialSuccess: Array<{ rejected: number; message: string }> = [];
  /** Every Export call as it arrived: its method, metadata, message size and the client's address:port (before any failure above). */
  readonly calls: Array<{ path: string; metadata: Record<string, string>; bytes: number; peer: string }> = [];

  private constructor(
    readonly port: number,
    server: grpc.Server,
    root: protobuf.Root,
    private readonly scheme: 'http' | 'https',
  ) {
    this.server = server;
    this.metricsType = root.lookupType('flowtel.otlp.ExportMetricsServiceRequest');
    this.logsType = root.lookupType('flowtel.otlp.ExportLogsServiceRequest');
  }

  get endpoint(): string {
    return `${this.scheme}://127.0.0.1:${this.port}`;
  }

  /** `tls`: serve over TLS with these PEMs; `clientCa` also requires a client certificate that CA signed. */
  static async start(port = 0, tls?: { cert: string; key: string; clientCa?: string }): Promise<OtlpReceiver> {
    const root = protobuf.loadSync(protoFile());
    // Larger than gRPC's 4 MiB default so a test never loses data to the receiver's own limit.
    const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
    const credentials = tls
      ? grpc.ServerCredentials.createSsl(
          tls.clientCa ? Buffer.from(tls.clientCa) : null,
          [{ cert_chain: Buffer.from(tls.cert), private_key: Buffer.from(tls.key) }],
          tls.clientCa !== undefined,
        )
      : grpc.ServerCredentials.createInsecure();
    const bound = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, credentials, (err, p) => (err ? reject(err) : resolve(p))),
    );
    const receiver = new OtlpReceiver(bound, server, root, tls ? 'https' : 'http');
    receiver.register(server);
    return receiver;
  }

  /**
   * Every data point of `metric` from the latest collection that has it, filtered by attributes. An agent may
   * split one collection into several requests; their points share the collection's end time.
   */
  latestPoints(metric: string, match: AttributeMap = {}): ReceivedDataPoint[] {
    let latest: bigint | undefined;
    const out: ReceivedDataPoint[] = [];
    for (let i = this.metricExports.length - 1; i >= 0 && i >= this.metricExports.length - 5000; i--) {
      const points = this.metricExports[i].points.filter((p) => p.metric === metric);
      if (points.length === 0) continue;
      latest ??= points[0].timeUnixNano;
      const same = points.filter((p) => p.timeUnixNano === latest);
      if (same.length === 0) break; // an older collection
      for (const p of same) if (matches(p.attributes, match)) out.push(p);
    }
    return out;
  }

  /** Sum over matching series of the latest export that has the metric (0 if none). */
  latestTotal(metric: string, match: AttributeMap = {}): number {
    return this.latestPoints(metric, match).reduce((s, p) => s + p.value, 0);
  }

  logsMatching(eventName: string, match: AttributeMap = {}): ReceivedLogRecord[] {
    return this.logRecords.filter((r) => r.eventName === eventName && matches(r.attributes, match));
  }

  /** Events the matching log records stand for: a summary of repeats counts its flowtel.event.count, any other record one. */
  eventsMatching(eventName: string, match: AttributeMap = {}): number {
    return this.logsMatching(eventName, match).reduce((n, r) => n + Number(r.attributes['flowtel.event.count'] ?? 1), 0);
  }

  /**
   * Stops at once for new calls and waits for calls in flight, at most `graceMs`: grpc-js calls back only once
   * every HTTP/2 session has ended, and a session of a client that went away without closing it may never end
   * (a collector test once waited out mocha's timeout here, with no socket left open).
   */
  async stop(graceMs = 5000): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, graceMs);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private register(server: grpc.Server): void {
    const passThrough = { requestStream: false, responseStream: false } as const;
    const identity = (b: Buffer): Buffer => b;
    const method = (p: string) => ({
      ...passThrough,
      path: p,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    });
    const handle =
      (decode: (body: Buffer) => void) =>
      (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>): void => {
        const metadata: Record<string, string> = {};
        for (const [key, value] of Object.entries(call.metadata.getMap())) metadata[key] = String(value);
        this.calls.push({ path: call.getPath(), metadata, bytes: call.request.length, peer: call.getPeer() });
        if (this.stall) return;
        const failure = this.failing ?? this.failNext.shift();
        if (failure) {
          callback(failure);
          return;
        }
        try {
          decode(call.request);
          const partial = call.getPath() === METRICS_PATH ? this.metricsPartialSuccess.shift() : undefined;
          // An empty Export*ServiceResponse, or one whose partial_success (field 1) says what was refused.
          callback(null, partial ? partialSuccessResponse(partial.rejected, partial.message) : Buffer.alloc(0));
        } catch (err) {
          callback({ code: grpc.status.INVALID_ARGUMENT, details: (err as Error).message });
        }
      };
    server.addService({ Export: method(METRICS_PATH) } as unknown as grpc.ServiceDefinition, {
      Export: handle((b) => this.onMetrics(b)),
    });
    server.addService({ Export: method(LOGS_PATH) } as unknown as grpc.ServiceDefinition, {
      Export: handle((b) => this.onLogs(b)),
    });
  }

  private onMetrics(body: Buffer): void {
    const request = this.metricsType.toObject(this.metricsType.decode(body), { longs: String, bytes: Buffer, defaults: false }) as {
      resourceMetrics?: Array<{ resource?: { attributes?: RawKeyValue[] }; scopeMetrics?: Array<{ metrics?: RawMetric[] }> }>;
    };
    const points: ReceivedDataPoint[] = [];
    for (const rm of request.resourceMetrics ?? []) {
      const resource = attributes(rm.resource?.attributes);
      for (const sm of rm.scopeMetrics ?? []) {
        for (const m of sm.metrics ?? []) for (const p of metricPoints(m, resource)) points.push(p);
      }
    }
    this.metricExports.push({ receivedAt: Date.now(), points });
  }

  private onLogs(body: Buffer): void {
    const request = this.logsType.toObject(this.logsType.decode(body), { longs: String, bytes: Buffer, defaults: true }) as {
      resourceLogs?: Array<{ resource?: { attributes?: RawKeyValue[] }; scopeLogs?: Array<{ logRecords?: RawLogRecord[] }> }>;
    };
    for (const rl of request.resourceLogs ?? []) {
      const resource = attributes(rl.resource?.attributes);
      for (const sl of rl.scopeLogs ?? []) {
        for (const r of sl.logRecords ?? []) {
          this.logRecords.push({
            eventName: r.eventName ?? '',
            severityText: r.severityText ?? '',
            body: anyValue(r.body),
            attributes: attributes(r.attributes),
            resource,
            timeUnixNano: nanos(r.timeUnixNano),
            traceId: r.traceId ? Buffer.from(r.traceId).toString('hex') : '',
            spanId: r.spanId ? Buffer.from(r.spanId).toString('hex') : '',
          });
        }
      }
    }
  }
}

interface RawNumberPoint {
  attributes?: RawKeyValue[];
  timeUnixNano?: string;
  asDouble?: number;
  asInt?: string;
}
interface RawHistogramPoint {
  attributes?: RawKeyValue[];
  timeUnixNano?: string;
  count?: string;
  sum?: number;
  bucketCounts?: string[];
  explicitBounds?: number[];
}
interface RawMetric {
  name: string;
  unit?: string;
  sum?: { dataPoints?: RawNumberPoint[]; aggregationTemporality?: number; isMonotonic?: boolean };
  gauge?: { dataPoints?: RawNumberPoint[] };
  histogram?: { dataPoints?: RawHistogramPoint[]; aggregationTemporality?: number };
}
interface RawLogRecord {
  eventName?: string;
  severityText?: string;
  body?: RawAnyValue;
  attributes?: RawKeyValue[];
  timeUnixNano?: string;
  traceId?: Buffer;
  spanId?: Buffer;
}

function temporality(v: number | undefined): 'delta' | 'cumulative' | undefined {
  return v === 1 ? 'delta' : v === 2 ? 'cumulative' : undefined;
}

function numberValue(p: RawNumberPoint): number {
  return p.asDouble !== undefined ? p.asDouble : Number(p.asInt ?? 0);
}

function metricPoints(m: RawMetric, resource: AttributeMap): ReceivedDataPoint[] {
  const base = { metric: m.name, unit: m.unit ?? '', resource };
  if (m.sum) {
    const t = temporality(m.sum.aggregationTemporality);
    return (m.sum.dataPoints ?? []).map((p) => ({
      ...base,
      kind: 'sum' as const,
      monotonic: m.sum?.isMonotonic ?? false,
      ...(t ? { temporality: t } : {}),
      attributes: attributes(p.attributes),
      value: numberValue(p),
      timeUnixNano: nanos(p.timeUnixNano),
    }));
  }
  if (m.gauge) {
    return (m.gauge.dataPoints ?? []).map((p) => ({
      ...base,
      kind: 'gauge' as const,
      attributes: attributes(p.attributes),
      value: numberValue(p),
      timeUnixNano: nanos(p.timeUnixNano),
    }));
  }
  if (m.histogram) {
    const t = temporality(m.histogram.aggregationTemporality);
    return (m.histogram.dataPoints ?? []).map((p) => ({
      ...base,
      kind: 'histogram' as const,
      ...(t ? { temporality: t } : {}),
      attributes: attributes(p.attributes),
      value: p.sum ?? 0,
      count: Number(p.count ?? 0),
      bucketCounts: (p.bucketCounts ?? []).map(Number),
      explicitBounds: p.explicitBounds ?? [],
      timeUnixNano: nanos(p.timeUnixNano),
    }));
  }
  return [];
}

function matches(attrs: AttributeMap, match: AttributeMap): boolean {
  return Object.entries(match).every(([k, v]) => attrs[k] === v);
}
