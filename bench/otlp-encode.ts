/**
 * OTLP request encoding of a 100,000-flow export, in process: the same
 * path as the agent's export (flow rows named by RowIdentity, series lists,
 * SeriesProducer's lazy metrics, the chunking exporter's requests of 5,000
 * points) up to the bytes handed to gRPC, once with the OpenTelemetry
 * serializer the stock exporter uses and once with ours
 * (src/exporters/otlp). Rounds alternate between the two.
 */
import { hrTime } from '@opentelemetry/core';
import { ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { planChunks } from '../src/exporters/chunking-exporter';
import { MetricsSerializer } from '../src/exporters/otlp/metric-exporter';
import { SeriesProducer } from '../src/exporters/series-producer';
import type { EndpointRef, LocalEndpoint } from '../src/k8s/attribution';
import type { CounterRows, SeriesTotals } from '../src/probes/shared/endpoint-counters';
import { counterSums } from '../src/probes/shared/instruments';
import { RowIdentity } from '../src/probes/shared/row-identity';
import type { AttributeParts } from '../src/probes/series';
import { METRIC_POD_NETWORK_IO, METRIC_POD_NETWORK_PACKETS } from '../src/semconv';
import { publishReport, summarize, table, type Summary } from './report';

const FLOWS = 100_000;
const PODS = 20;
const POINTS_PER_REQUEST = 5000;

type Field = 'bytes' | 'packets';

/** Flow rows of PODS pods, each to its own external peer address and port, half of them each direction. */
function flowRows(): CounterRows<Field> {
  const pods: LocalEndpoint[] = Array.from({ length: PODS }, (_, p) =>
    Object.freeze({
      key: `pod/uid-${p}`,
      keyId: `p${p}`,
      kind: 'pod' as const,
      attributes: Object.freeze({
        'k8s.node.name': 'worker-1',
        'k8s.pod.uid': `0f1e2d3c-aaaa-bbbb-cccc-${String(p).padStart(12, '0')}`,
        'k8s.pod.name': `checkout-7d9f8b6c5d-${p}x2kq`,
        'k8s.namespace.name': 'shop',
        'k8s.deployment.name': 'checkout',
        'service.name': 'checkout',
        'container.id': `${p}`.padStart(64, 'c'),
        'flowtel.attribution': 'pod',
      }),
    }),
  );
  const directions = ['transmit', 'receive'].map((d) => Object.freeze({ key: d, attributes: Object.freeze({ 'network.io.direction': d }) }));
  const external = Object.freeze({ attributes: Object.freeze({ 'flowtel.peer.kind': 'external' }), stale: false });
  const start = hrTime();
  const fields = ['bytes', 'packets'] as const;
  const rows = Array.from({ length: FLOWS }, (_, i): SeriesTotals<Field> & AttributeParts => {
    const endpoint = pods[i % PODS];
    const ref: EndpointRef = { cgroupId: BigInt(1000 + (i % PODS)), netnsIno: 4026531840 };
    const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    const identity = new RowIdentity(ref, endpoint, directions[i & 1], address, 1024 + (i % 50_000), 6, 2, external, `${endpoint.keyId}|${address}|${i}`);
    return {
      endpoint,
      seriesKey: identity.seriesKey,
      get attributes() {
        return identity.attributes;
      },
      attributeParts: () => identity.attributeParts(),
      totals: { bytes: i * 1500, packets: i },
      total: (field: number) => (field === 0 ? i * 1500 : i),
      startTime: start,
    };
  });
  return { fields, length: rows.length, at: (index) => rows[index], [Symbol.iterator]: () => rows[Symbol.iterator]() };
}

interface EncoderResult {
  name: string;
  exportMs: Summary;
  requestMs: Summary;
  bytes: number;
}

export interface OtlpEncodeResult {
  requests: number;
  points: number;
  encoders: EncoderResult[];
}

/** One export: every request of the collection made and encoded; returns ms per request and total bytes. */
function encodeExport(metrics: ResourceMetrics, encode: (request: ResourceMetrics) => Uint8Array): { ms: number[]; bytes: number } {
  const ms: number[] = [];
  let bytes = 0;
  for (const plan of planChunks(metrics, POINTS_PER_REQUEST)) {
    const started = process.hrtime.bigint();
    bytes += encode(plan.build()).length;
    ms.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  return { ms, bytes };
}

export async function runOtlpEncode(args: string[]): Promise<OtlpEncodeResult> {
  const roundsAt = args.indexOf('--rounds');
  const rounds = roundsAt >= 0 ? Number(args[roundsAt + 1]) : 7;
  const producer = new SeriesProducer({ name: 'flowtel', version: 'bench' }, resourceFromAttributes({ 'service.name': 'flowtel', 'k8s.node.name': 'worker-1' }));
  const rows = flowRows();
  producer.register(() =>
    counterSums(rows, [
      [METRIC_POD_NETWORK_IO, 'bytes'],
      [METRIC_POD_NETWORK_PACKETS, 'packets'],
    ]),
  );
  const ours = new MetricsSerializer();
  const encoders: Array<{ name: string; encode: (r: ResourceMetrics) => Uint8Array }> = [
    { name: 'OpenTelemetry ProtobufMetricsSerializer (stock exporter)', encode: (r) => ProtobufMetricsSerializer.serializeRequest(r)! },
    { name: 'Flowtel MetricsRequestEncoder', encode: (r) => ours.serializeRequest(r)! },
  ];
  const samples = encoders.map(() => ({ exportMs: [] as number[], requestMs: [] as number[], bytes: 0 }));
  let requests = 0;
  let points = 0;
  // One unmeasured export each first: compiles the code paths and fills our encoder's cache of shared parts.
  for (let round = -1; round < rounds; round++) {
    for (let e = 0; e < encoders.length; e++) {
      const { resourceMetrics } = await producer.collect();
      const { ms, bytes } = encodeExport(resourceMetrics, encoders[e].encode);
      if (round < 0) continue;
      samples[e].exportMs.push(ms.reduce((a, b) => a + b, 0));
      samples[e].requestMs.push(...ms);
      samples[e].bytes = bytes;
      requests = ms.length;
      points = rows.length * 2;
    }
    if (round >= 0) process.stdout.write(`  round ${round + 1}: ${samples.map((s) => `${s.exportMs[round].toFixed(0)} ms`).join(' / ')}\n`);
  }
  return {
    requests,
    points,
    encoders: encoders.map((e, i) => ({ name: e.name, exportMs: summarize(samples[i].exportMs), requestMs: summarize(samples[i].requestMs), bytes: samples[i].bytes })),
  };
}

function otlpEncodeReport(r: OtlpEncodeResult, markdown: boolean): string {
  const f = (x: number, digits = 1) => x.toFixed(digits);
  return [
    `One export of ${FLOWS.toLocaleString('en-US')} flows of ${PODS} pods (${r.points.toLocaleString('en-US')} points: bytes and packets), cut into ${r.requests} requests of ${POINTS_PER_REQUEST.toLocaleString('en-US')} points, encoded to the bytes handed to gRPC; one thread, so time is CPU. Medians of the rounds (min–max):`,
    '',
    table(
      ['Encoder', 'Per export', 'Per request', 'Bytes per export'],
      r.encoders.map((e) => [e.name, `${f(e.exportMs.median, 0)} ms (${f(e.exportMs.min, 0)}–${f(e.exportMs.max, 0)})`, `${f(e.requestMs.median)} ms`, `${(e.bytes / 1048576).toFixed(1)} MiB`]),
      markdown,
    ),
  ].join('\n');
}

export async function runOtlpEncodeBenchmark(args: string[]): Promise<number> {
  const result = await runOtlpEncode(args);
  const [stock, ours] = result.encoders;
  if (stock.bytes !== ours.bytes) process.stdout.write(`  note: the encoders wrote different sizes (${stock.bytes} and ${ours.bytes} bytes); attribute order may differ, content is checked by test/unit/otlp-metrics-request.test.ts\n`);
  publishReport(
    args,
    { title: 'OTLP request encoding', name: 'otlp-encode', rerun: '`npx tsc -p tsconfig.json && npm run bench -- otlp-encode` (`--rounds N`, default 7).' },
    (markdown) => otlpEncodeReport(result, markdown),
  );
  return 0;
}
