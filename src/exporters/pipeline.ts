/**
 * SDK wiring, the only place that knows exporters. With an OTLP endpoint,
 * metrics and logs go over OTLP/gRPC; without one, the local defaults are a
 * Prometheus scrape endpoint and readable console lines. Probe groups only
 * ever see the API-level meter and logger handed out here.
 */
import type { Meter } from '@opentelemetry/api';
import type { Logger } from '@opentelemetry/api-logs';
import type { OtlpGrpcLogExporter } from './otlp/log-exporter';
import type { OtlpGrpcMetricExporter } from './otlp/metric-exporter';
import type { Resource } from '@opentelemetry/resources';
import { LoggerProvider, type LogRecordExporter } from '@opentelemetry/sdk-logs';
import { LogQueue, type LogLosses } from './log-queue';
import { MeterProvider, PeriodicExportingMetricReader, type IMetricReader } from '@opentelemetry/sdk-metrics';
import type { FlowtelConfig } from '../config/config';
import type { SeriesRegistry } from '../probes/series';
import { ConsoleLogLines, ConsoleMetricLines } from './console';
import { ChunkingMetricExporter } from './chunking-exporter';
import { SeriesProducer } from './series-producer';

export const INSTRUMENTATION_SCOPE = 'flowtel';

/**
 * Data points per OTLP metrics request: about 0.5 MB at flow granularity,
 * well under the 4 MiB default gRPC limit of collectors. Smaller than that
 * for memory: a request's points (and their attribute parts) are alive
 * while it is encoded, and V8 promotes what outlives two scavenges of its
 * 1 MiB young generation. With 5,000 points a request allocated more than a
 * scavenge's worth, so its points were promoted and piled up in the old
 * generation until a full GC: at 100,000 flows the heap in use peaked at
 * 127 MiB over 70 MiB live; with 1,000 it peaked at 79 MiB.
 */
const POINTS_PER_REQUEST = 1000;
/** Log records waiting for export (the SDK's default), and per export call. */
const LOG_QUEUE_RECORDS = 2048;
const LOG_BATCH_RECORDS = 512;

export interface TelemetryPipeline {
  readonly meter: Meter;
  readonly logger: Logger;
  /** Where probe groups publish kernel-map series (exported by every reader). */
  readonly series: SeriesRegistry;
  /** Seconds the last collection of those series took. */
  lastCollectionSeconds(): number;
  /** OTLP metric exports skipped because the previous one was still in flight. */
  skippedMetricExports(): number;
  /** Log records not delivered, by why, summed over the log destinations. */
  logLosses(): LogLosses;
  /** Human-readable list of where data goes, for the start-up log line. */
  readonly destinations: string[];
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

export interface PipelineOptions {
  config: FlowtelConfig;
  resource: Resource;
  version: string;
  /** Where the console exporters write (stdout by default). */
  consoleOut?: NodeJS.WritableStream;
  /** Told the first time log records are lost for each reason. */
  onLogLoss?: (kind: keyof LogLosses, detail: string) => void;
}

/*
 * Exporter packages are loaded only when configured: gRPC with the OTLP
 * exporters, or the Prometheus HTTP server, each add a few MiB to an agent
 * that every node runs.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
const otlpModules = () => ({
  endpoint: require('./otlp/grpc-endpoint') as typeof import('./otlp/grpc-endpoint'),
  logs: require('./otlp/log-exporter') as typeof import('./otlp/log-exporter'),
  metrics: require('./otlp/metric-exporter') as typeof import('./otlp/metric-exporter'),
  temporality: (require('@opentelemetry/exporter-metrics-otlp-http') as typeof import('@opentelemetry/exporter-metrics-otlp-http'))
    .AggregationTemporalityPreference,
});
const prometheusModule = () => require('@opentelemetry/exporter-prometheus') as typeof import('@opentelemetry/exporter-prometheus');
/* eslint-enable @typescript-eslint/no-require-imports */

export async function createTelemetryPipeline(options: PipelineOptions): Promise<TelemetryPipeline> {
  const { config, resource, version } = options;
  const otlp = config.exporters.otlp;
  const useOtlp = otlp.endpoint !== undefined;
  const prometheusOn = config.exporters.prometheus.enabled ?? !useOtlp;
  const consoleOn = config.exporters.console.enabled ?? !useOtlp;

  const readers: IMetricReader[] = [];
  const producer = new SeriesProducer({ name: INSTRUMENTATION_SCOPE, version }, resource);
  const metricProducers = [producer];
  const logExporters: LogRecordExporter[] = [];
  const destinations: string[] = [];
  const otlpExporters: Array<OtlpGrpcMetricExporter | OtlpGrpcLogExporter> = [];
  let chunking: ChunkingMetricExporter | undefined;

  if (useOtlp) {
    const { endpoint: endpoints, logs, metrics, temporality: AggregationTemporalityPreference } = otlpModules();
    const userAgent = `flowtel/${version}`;
    const endpointOf = (signal: 'METRICS' | 'LOGS') => endpoints.resolveGrpcEndpoint(otlp.endpoint!, signal, otlp.headers);
    const metricExporter = new metrics.OtlpGrpcMetricExporter({
      endpoint: endpointOf('METRICS'),
      userAgent,
      timeoutMillis: otlp.exportTimeoutMs,
      temporalityPreference:
        otlp.temporality === 'delta' ? AggregationTemporalityPreference.DELTA : AggregationTemporalityPreference.CUMULATIVE,
    });
    readers.push(
      new PeriodicExportingMetricReader({
        exporter: (chunking = new ChunkingMetricExporter(metricExporter, POINTS_PER_REQUEST)),
        exportIntervalMillis: otlp.exportIntervalMs,
        exportTimeoutMillis: Math.min(otlp.exportTimeoutMs, otlp.exportIntervalMs),
        metricProducers,
      }),
    );
    const logExporter = new logs.OtlpGrpcLogExporter({ endpoint: endpointOf('LOGS'), userAgent, timeoutMillis: otlp.exportTimeoutMs });
    otlpExporters.push(metricExporter, logExporter);
    logExporters.push(logExporter);
    destinations.push(`OTLP/gRPC ${otlp.endpoint} (metrics every ${otlp.exportIntervalMs} ms, ${otlp.temporality})`);
  }
  if (prometheusOn) {
    const { host, port } = config.exporters.prometheus;
    const prometheus = new (prometheusModule().PrometheusExporter)({ host, port, preventServerStart: true, metricProducers });
    try {
      await prometheus.startServer();
    } catch (err) {
      throw new Error(`Prometheus exporter cannot listen on ${host}:${port}: ${(err as Error).message}`);
    }
    readers.push(prometheus);
    destinations.push(`Prometheus http://${host}:${port}/metrics`);
  }
  if (consoleOn) {
    const out = options.consoleOut ?? process.stdout;
    readers.push(
      new PeriodicExportingMetricReader({ exporter: new ConsoleMetricLines(out), exportIntervalMillis: config.exporters.console.intervalMs, metricProducers }),
    );
    logExporters.push(new ConsoleLogLines(out));
    destinations.push(`console (every ${config.exporters.console.intervalMs} ms)`);
  }

  const meterProvider = new MeterProvider({ resource, readers });
  // Failed metric exports are counted by the SDK's own metrics (otel.sdk.exporter.*), which go out with ours.
  // Log records that cannot be delivered are counted by the queues, as losses (flowtel.agent.events.lost).
  const logQueues = logExporters.map(
    (exporter) =>
      new LogQueue(exporter, {
        maxQueueSize: LOG_QUEUE_RECORDS,
        maxBatchSize: LOG_BATCH_RECORDS,
        delayMs: 1000,
        exportTimeoutMs: config.exporters.otlp.exportTimeoutMs,
        ...(options.onLogLoss ? { onFirstLoss: options.onLogLoss } : {}),
      }),
  );
  const processors = logQueues;
  const loggerProvider = new LoggerProvider({ resource, processors, meterProvider });
  for (const exporter of otlpExporters) exporter.setSelfObsMeterProvider(meterProvider);

  return {
    meter: meterProvider.getMeter(INSTRUMENTATION_SCOPE, version),
    logger: loggerProvider.getLogger(INSTRUMENTATION_SCOPE, version),
    series: producer,
    lastCollectionSeconds: () => producer.lastCollectionSeconds,
    skippedMetricExports: () => chunking?.skipped ?? 0,
    logLosses: () => ({
      queueFull: logQueues.reduce((n, q) => n + q.losses.queueFull, 0),
      exportFailed: logQueues.reduce((n, q) => n + q.losses.exportFailed, 0),
    }),
    destinations,
    async forceFlush() {
      await Promise.all([meterProvider.forceFlush(), loggerProvider.forceFlush()]);
    },
    async shutdown() {
      await Promise.allSettled([meterProvider.shutdown(), loggerProvider.shutdown()]);
    },
  };
}
