/**
 * OTLP request encoding of a 100,000-flow export, in process: the same
 * path as the agent's export (flow rows named by RowIdentity, series lists,
 * SeriesProducer's lazy metrics, the chunking exporter's requests of 5,000
 * points) up to the bytes handed to gRPC, once with the OpenTelemetry
 * serializer the stock exporter uses and once with ours
 * (src/exporters/otlp). Rounds alternate between the two.
 */
import { ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { planChunks } from '../src/exporters/chunking-exporter';
import { MetricsSerializer } from '../src/exporters/otlp/metric-exporter';
import { flowProducer } from './flow-fixture';
import { publishReport, summarize, table, type Summary } from './report';

const FLOWS = 100_000;
const PODS = 20;
const POINTS_PER_REQUEST = 5000;

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
  const producer = flowProducer(FLOWS, PODS);
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
      points = FLOWS * 2;
    }
    if (round >= 0) process.stdout.write(`  round ${round + 1}: ${samples.map((s) => `${s.exportMs[round].toFixed(0)} ms`).join(' / ')}\n`);
  }
  return {
    requests,
    points,
    encoders: encoders.map((e, i) => ({
      name: e.name,
      exportMs: summarize(samples[i].exportMs),
      requestMs: summarize(samples[i].requestMs),
      bytes: samples[i].bytes,
    })),
  };
}

function otlpEncodeReport(r: OtlpEncodeResult, markdown: boolean): string {
  const f = (x: number, digits = 1) => x.toFixed(digits);
  return [
    `One export of ${FLOWS.toLocaleString('en-US')} flows of ${PODS} pods (${r.points.toLocaleString('en-US')} points: bytes and packets), cut into ${r.requests} requests of ${POINTS_PER_REQUEST.toLocaleString('en-US')} points, encoded to the bytes handed to gRPC; one thread, so time is CPU. Medians of the rounds (min–max):`,
    '',
    table(
      ['Encoder', 'Per export', 'Per request', 'Bytes per export'],
      r.encoders.map((e) => [
        e.name,
        `${f(e.exportMs.median, 0)} ms (${f(e.exportMs.min, 0)}–${f(e.exportMs.max, 0)})`,
        `${f(e.requestMs.median)} ms`,
        `${(e.bytes / 1048576).toFixed(1)} MiB`,
      ]),
      markdown,
    ),
  ].join('\n');
}

export async function runOtlpEncodeBenchmark(args: string[]): Promise<number> {
  const result = await runOtlpEncode(args);
  const [stock, ours] = result.encoders;
  if (stock.bytes !== ours.bytes)
    process.stdout.write(
      `  note: the encoders wrote different sizes (${stock.bytes} and ${ours.bytes} bytes); attribute order may differ, content is checked by test/unit/otlp-metrics-request.test.ts\n`,
    );
  publishReport(
    args,
    { title: 'OTLP request encoding', name: 'otlp-encode', rerun: '`npx tsc -p tsconfig.json && npm run bench -- otlp-encode` (`--rounds N`, default 7).' },
    (markdown) => otlpEncodeReport(result, markdown),
  );
  return 0;
}
