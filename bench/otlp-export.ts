/**
 * The OTLP metric export, whole, side by side: the stock OpenTelemetry
 * exporters (@opentelemetry/exporter-metrics-otlp-grpc, and -http, which
 * sends JSON) against ours (src/exporters/otlp: our protobuf encoder on our
 * gRPC and HTTP transports, and the OpenTelemetry JSON serializer for
 * http/json). Each exports 10,000 and 100,000 flows through the agent's own
 * export path (SeriesProducer, lazy points, chunks of 1,000 points) to a
 * collector stand-in in another process (bench/otlp-sink.ts), each variant
 * in a fresh process. Per export: CPU time of the exporting process and wall
 * time (medians of the rounds), the peak RSS above the process's size before
 * the first export, and the bytes that reached the sink.
 *
 * We replaced the stock exporters for a measured CPU and memory reason; this
 * keeps that measured. If ours were not clearly better (less than 2x on CPU
 * or on peak RSS), the stock exporters should come back.
 */
import { fork } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { PushMetricExporter } from '@opentelemetry/sdk-metrics';
import { defaultConfig } from '../src/config/config';
import { ChunkingMetricExporter } from '../src/exporters/chunking-exporter';
import { OtlpMetricExporter } from '../src/exporters/otlp/metric-exporter';
import { exporterConfig, resolveOtlpSignal } from '../src/exporters/otlp/signal-settings';
import { flowProducer } from './flow-fixture';
import { MiB, publishReport, summarize, table, type Summary } from './report';

const PODS = 20;
const POINTS_PER_REQUEST = 1000;
const SIZES = [10_000, 100_000];

const VARIANTS = {
  'stock-grpc': '@opentelemetry/exporter-metrics-otlp-grpc (stock)',
  'ours-grpc': 'Flowtel, grpc',
  'stock-http-json': '@opentelemetry/exporter-metrics-otlp-http, JSON (stock)',
  'ours-http-json': 'Flowtel, http/json',
  'ours-http-protobuf': 'Flowtel, http/protobuf',
} as const;
type Variant = keyof typeof VARIANTS;

interface ChildResult {
  cpuMs: number[];
  wallMs: number[];
  peakRssGrowth: number;
  failures: string[];
}

interface Row {
  variant: Variant;
  flows: number;
  cpuMs: Summary;
  wallMs: Summary;
  peakRssGrowthMiB: number;
  bytesPerExport: number;
  failures: string[];
}

/* eslint-disable @typescript-eslint/no-require-imports */
function exporterFor(variant: Variant, grpcPort: number, httpPort: number): PushMetricExporter {
  const timeoutMillis = 60_000;
  if (variant === 'stock-grpc') {
    const { OTLPMetricExporter } = require('@opentelemetry/exporter-metrics-otlp-grpc') as typeof import('@opentelemetry/exporter-metrics-otlp-grpc');
    return new OTLPMetricExporter({ url: `http://127.0.0.1:${grpcPort}`, timeoutMillis });
  }
  if (variant === 'stock-http-json') {
    const { OTLPMetricExporter } = require('@opentelemetry/exporter-metrics-otlp-http') as typeof import('@opentelemetry/exporter-metrics-otlp-http');
    return new OTLPMetricExporter({ url: `http://127.0.0.1:${httpPort}/v1/metrics`, timeoutMillis });
  }
  const protocol = variant === 'ours-grpc' ? 'grpc' : variant === 'ours-http-json' ? 'http/json' : 'http/protobuf';
  const port = protocol === 'grpc' ? grpcPort : httpPort;
  const otlp = { ...defaultConfig('/tmp').exporters.otlp, endpoint: `http://127.0.0.1:${port}`, protocol, exportTimeoutMs: timeoutMillis } as const;
  return new OtlpMetricExporter(exporterConfig(resolveOtlpSignal(otlp, 'METRICS', {})!, 'flowtel/bench'));
}
/* eslint-enable @typescript-eslint/no-require-imports */

function statusKiB(field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return Number(match?.[1] ?? 0);
}

/** In the child: one variant, one size, `rounds` measured exports after one unmeasured. */
async function child(variant: Variant, flows: number, rounds: number, grpcPort: number, httpPort: number): Promise<ChildResult> {
  const producer = flowProducer(flows, PODS);
  const exporter = new ChunkingMetricExporter(exporterFor(variant, grpcPort, httpPort), POINTS_PER_REQUEST);
  // The first collection builds the series; its memory is the agent's either way, so it is in the baseline.
  await producer.collect();
  (global as { gc?: () => void }).gc?.();
  // Resets the peak RSS (VmHWM) to the current RSS.
  fs.writeFileSync('/proc/self/clear_refs', '5');
  const baseline = statusKiB('VmRSS');
  const result: ChildResult = { cpuMs: [], wallMs: [], peakRssGrowth: 0, failures: [] };
  for (let round = -1; round < rounds; round++) {
    const { resourceMetrics } = await producer.collect();
    const cpu = process.cpuUsage();
    const started = process.hrtime.bigint();
    const outcome = await new Promise<ExportResult>((resolve) => exporter.export(resourceMetrics, resolve));
    const wall = Number(process.hrtime.bigint() - started) / 1e6;
    const used = process.cpuUsage(cpu);
    if (outcome.code !== ExportResultCode.SUCCESS) result.failures.push(outcome.error?.message ?? 'failed');
    if (round < 0) continue;
    result.cpuMs.push((used.user + used.system) / 1000);
    result.wallMs.push(wall);
  }
  result.peakRssGrowth = (statusKiB('VmHWM') - baseline) * 1024;
  await exporter.shutdown();
  return result;
}

function runChild(variant: Variant, flows: number, rounds: number, ports: { grpcPort: number; httpPort: number }): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const proc = fork(__filename, ['--child', variant, String(flows), String(rounds), String(ports.grpcPort), String(ports.httpPort)], {
      execArgv: ['--expose-gc'],
      env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '131072' },
    });
    let result: ChildResult | undefined;
    proc.on('message', (m) => (result = m as ChildResult));
    proc.on('exit', (code) => (result ? resolve(result) : reject(new Error(`${variant} at ${flows} flows exited with ${code}`))));
  });
}

function sinkBytes(sink: ReturnType<typeof fork>): Promise<number> {
  return new Promise((resolve) => {
    sink.once('message', (m) => resolve((m as { bytes: number }).bytes));
    sink.send('bytes');
  });
}

function report(rows: Row[], rounds: number, markdown: boolean): string {
  const f = (x: number) => x.toFixed(0);
  const lines = [
    `Flows of ${PODS} pods (two points each: bytes and packets) exported through the agent's export path in requests of ${POINTS_PER_REQUEST.toLocaleString('en-US')} points to a collector stand-in in another process (bench/otlp-sink.ts). Each variant in a fresh process; ${rounds} measured exports after one unmeasured; medians (min–max). CPU is the exporting process's (user + system); peak RSS is above its size just before the first export.`,
    '',
    table(
      ['Flows', 'Exporter', 'CPU per export', 'Wall per export', 'Peak RSS growth', 'Bytes per export'],
      rows.map((r) => [
        r.flows.toLocaleString('en-US'),
        VARIANTS[r.variant] + (r.failures.length ? ` (${r.failures.length} failed: ${r.failures[0]})` : ''),
        `${f(r.cpuMs.median)} ms (${f(r.cpuMs.min)}–${f(r.cpuMs.max)})`,
        `${f(r.wallMs.median)} ms`,
        `${r.peakRssGrowthMiB.toFixed(1)} MiB`,
        `${(r.bytesPerExport / MiB).toFixed(1)} MiB`,
      ]),
      markdown,
    ),
    '',
    ...SIZES.map((flows) => {
      const get = (v: Variant) => rows.find((r) => r.flows === flows && r.variant === v)!;
      const ratio = (a: Row, b: Row) =>
        `CPU ${(a.cpuMs.median / b.cpuMs.median).toFixed(1)}x, peak RSS ${(a.peakRssGrowthMiB / Math.max(0.1, b.peakRssGrowthMiB)).toFixed(1)}x`;
      return `- ${flows.toLocaleString('en-US')} flows: stock gRPC / ours ${ratio(get('stock-grpc'), get('ours-grpc'))}; stock HTTP JSON / ours http/json ${ratio(get('stock-http-json'), get('ours-http-json'))}.`;
    }),
  ];
  return lines.join('\n');
}

export async function runOtlpExportBenchmark(args: string[]): Promise<number> {
  const roundsAt = args.indexOf('--rounds');
  const rounds = roundsAt >= 0 ? Number(args[roundsAt + 1]) : 5;
  const sink = fork(path.join(__dirname, 'otlp-sink.js'));
  try {
    const ports = await new Promise<{ grpcPort: number; httpPort: number }>((resolve) =>
      sink.once('message', (m) => resolve(m as { grpcPort: number; httpPort: number })),
    );
    const rows: Row[] = [];
    for (const flows of SIZES) {
      for (const variant of Object.keys(VARIANTS) as Variant[]) {
        const before = await sinkBytes(sink);
        const r = await runChild(variant, flows, rounds, ports);
        const bytes = (await sinkBytes(sink)) - before;
        const row: Row = {
          variant,
          flows,
          cpuMs: summarize(r.cpuMs),
          wallMs: summarize(r.wallMs),
          peakRssGrowthMiB: r.peakRssGrowth / MiB,
          bytesPerExport: bytes / (rounds + 1),
          failures: r.failures,
        };
        rows.push(row);
        process.stdout.write(
          `  ${flows} flows, ${variant}: CPU ${row.cpuMs.median.toFixed(0)} ms, peak RSS +${row.peakRssGrowthMiB.toFixed(1)} MiB, ${(row.bytesPerExport / MiB).toFixed(1)} MiB\n`,
        );
      }
    }
    publishReport(
      args,
      {
        title: 'OTLP export: stock exporters and ours',
        name: 'otlp-export',
        rerun: '`npx tsc -p tsconfig.json && npm run bench -- otlp-export` (`--rounds N`, default 5).',
      },
      (markdown) => report(rows, rounds, markdown),
    );
    return rows.some((r) => r.failures.length) ? 1 : 0;
  } finally {
    sink.kill();
  }
}

if (require.main === module && process.argv[2] === '--child') {
  const [variant, flows, rounds, grpcPort, httpPort] = process.argv.slice(3);
  child(variant as Variant, Number(flows), Number(rounds), Number(grpcPort), Number(httpPort)).then(
    (result) => process.send!(result, () => process.exit(0)),
    (err: unknown) => {
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
