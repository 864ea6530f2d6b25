/**
 * SDK wiring, the only place that knows exporters. With an OTLP endpoint,
 * metrics and logs go over OTLP/gRPC; without one, the local defaults are a
 * Prometheus scrape endpoint and readable console lines. Probe groups only
 * ever see the API-level meter and logger handed out here.
 */
import type { Meter } from '@opentelemetry/api';
import type { Logger } from '@opentelemetry/api-logs';
import type { OtlpLogExporter } from './otlp/log-exporter';
import type { OtlpMetricExporter } from './otlp/metric-exporter';
import type { Resource } from '@opentelemetry/resources';
import { LoggerProvider, type LogRecordExporter } from '@opentelemetry/sdk-logs';
import { LogQueue, type LogLosses } from './log-queue';
import { MeterProvider, PeriodicExportingMetricReader, type IMetricReader } from '@opentelemetry/sdk-metrics';
import type { FlowtelConfig } from '../config/config';
import type { SeriesRegistry } from '../tables/series';
import { ConsoleLogLines, ConsoleMetricLines } from './console';
import { ChunkingMetricExporter } from './chunking-exporter';
import { ExportWatch, type ExportWatchLog } from './export-watch';
import { ExportClosing } from './otlp/closing';
import { endpointText, exporterConfig, resolveOtlpSettings, type OtlpSignalSettings } from './otlp/signal-settings';
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
/** After the deadline, how long the final flush may take to notice its calls were cut off. */
const SHUTDOWN_SETTLE_MS = 250;

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
  /** How the OTLP exports of each signal fare; empty without an OTLP endpoint. */
  readonly exportWatches: readonly ExportWatch[];
  /**
   * One last collection and export, then the exporters close. From now on
   * nothing is retried, and whatever is still being sent at `deadline`
   * (ms since the epoch) is cut off and counted in the report.
   */
  shutdown(deadline: number): Promise<ShutdownReport>;
}

/** What the final flush could not deliver: the agent's last log line says it. */
export interface ShutdownReport {
  /** False when the deadline came first. */
  finished: boolean;
  /** OTLP data points of the final export (or of one still in flight) not delivered. */
  metricPointsNotSent: number;
  /** Log records lost from the start of the stop, or still queued at its end. */
  logRecordsNotSent: number;
  /** Why the last OTLP export failed, when it did. */
  lastFailure?: string;
}

export interface PipelineOptions {
  config: FlowtelConfig;
  resource: Resource;
  version: string;
  /** Where the console exporters write (stdout by default). */
  consoleOut?: NodeJS.WritableStream;
  /** Told the first time log records are lost for each reason. */
  onLogLoss?: (kind: keyof LogLosses, detail: string) => void;
  /** Where export failures, summaries and recoveries are told (./export-watch); silent without. */
  log?: ExportWatchLog;
  /** Where the OTEL_EXPORTER_OTLP_* variables are read (process.env by default). */
  env?: NodeJS.ProcessEnv;
}

/*
 * Exporter packages are loaded only when configured: gRPC with the OTLP
 * exporters, or the Prometheus HTTP server, each add a few MiB to an agent
 * that every node runs.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
const otlpModules = () => ({
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
  const otlpSettings = resolveOtlpSettings(otlp, options.env ?? process.env);
  const useOtlp = otlpSettings.metrics !== undefined || otlpSettings.logs !== undefined;
  const prometheusOn = config.exporters.prometheus.enabled ?? !useOtlp;
  const consoleOn = config.exporters.console.enabled ?? !useOtlp;

  const readers: IMetricReader[] = [];
  const producer = new SeriesProducer({ name: INSTRUMENTATION_SCOPE, version }, resource);
  const metricProducers = [producer];
  const logExporters: LogRecordExporter[] = [];
  const destinations: string[] = [];
  const otlpExporters: Array<OtlpMetricExporter | OtlpLogExporter> = [];
  let chunking: ChunkingMetricExporter | undefined;
  const closing = new ExportClosing();
  const watches: ExportWatch[] = [];
  let metricsWatch: ExportWatch | undefined;
  let logsWatch: ExportWatch | undefined;
  const watchLog: ExportWatchLog = options.log ?? { warn: () => {}, info: () => {} };

  if (useOtlp) {
    const { logs, metrics, temporality: AggregationTemporalityPreference } = otlpModules();
    const userAgent = `flowtel/${version}`;
    const watch = (settings: OtlpSignalSettings, items: string, failureCost: string) =>
      new ExportWatch({
        signal: settings.signal === 'METRICS' ? 'metrics' : 'logs',
        destination: `OTLP ${settings.protocol} ${endpointText(settings)}`,
        items,
        failureCost,
        log: watchLog,
        summaryIntervalMs: otlp.failureSummaryIntervalMs,
      });
    if (otlpSettings.metrics) {
      const settings = otlpSettings.metrics;
      const metricsWatched = (metricsWatch = watch(settings, 'data points', 'metrics are cumulative, so the next export that succeeds carries every total'));
      const metricExporter = new metrics.OtlpMetricExporter({
        ...exporterConfig(settings, userAgent, { closing, onRejected: (items, message) => metricsWatched.rejected(items, message) }),
        temporalityPreference: otlp.temporality === 'delta' ? AggregationTemporalityPreference.DELTA : AggregationTemporalityPreference.CUMULATIVE,
      });
      readers.push(
        new PeriodicExportingMetricReader({
          exporter: (chunking = new ChunkingMetricExporter(metricExporter, POINTS_PER_REQUEST, metricsWatched)),
          exportIntervalMillis: otlp.exportIntervalMs,
          exportTimeoutMillis: Math.min(settings.timeoutMs, otlp.exportIntervalMs),
          metricProducers,
        }),
      );
      otlpExporters.push(metricExporter);
      watches.push(metricsWatched);
      destinations.push(`metrics: OTLP ${settings.protocol} ${endpointText(settings)} (every ${otlp.exportIntervalMs} ms, ${otlp.temporality})`);
    }
    if (otlpSettings.logs) {
      const settings = otlpSettings.logs;
      const logsWatched = (logsWatch = watch(
        settings,
        'log records',
        'the log records in it are lost, counted in flowtel.agent.events.lost{flowtel.loss.reason=log_export_failed}',
      ));
      const logExporter = new logs.OtlpLogExporter(
        exporterConfig(settings, userAgent, { closing, onRejected: (items, message) => logsWatched.rejected(items, message) }),
      );
      otlpExporters.push(logExporter);
      logExporters.push(logExporter);
      watches.push(logsWatched);
      destinations.push(`logs: OTLP ${settings.protocol} ${endpointText(settings)}`);
    }
  }
  if (prometheusOn) {
    const { host, port } = config.exporters.prometheus;
    const prometheus = new (prometheusModule().PrometheusExporter)({ host, port, preventServerStart: true, metricProducers });
    try {
      await prometheus.startServer();
    } catch (err) {
      throw new Error(`Prometheus exporter cannot listen on ${host}:${port}: ${(err as Error).message}`, { cause: err });
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
    (exporter, index) =>
      new LogQueue(exporter, {
        maxQueueSize: LOG_QUEUE_RECORDS,
        maxBatchSize: LOG_BATCH_RECORDS,
        delayMs: 1000,
        exportTimeoutMs: config.exporters.otlp.exportTimeoutMs,
        // The OTLP exporter comes first when there is one; its watch tells failed exports (and their loss) itself.
        ...(index === 0 && logsWatch ? { watch: logsWatch } : {}),
        onFirstLoss: (kind: keyof LogLosses, detail: string) => {
          if (!(kind === 'exportFailed' && index === 0 && logsWatch)) options.onLogLoss?.(kind, detail);
        },
      }),
  );
  const processors = logQueues;
  const loggerProvider = new LoggerProvider({ resource, processors, meterProvider });
  for (const exporter of otlpExporters) exporter.setSelfObsMeterProvider(meterProvider);
  const logLosses = (): LogLosses => ({
    queueFull: logQueues.reduce((n, q) => n + q.losses.queueFull, 0),
    exportFailed: logQueues.reduce((n, q) => n + q.losses.exportFailed, 0),
  });

  return {
    meter: meterProvider.getMeter(INSTRUMENTATION_SCOPE, version),
    logger: loggerProvider.getLogger(INSTRUMENTATION_SCOPE, version),
    series: producer,
    lastCollectionSeconds: () => producer.lastCollectionSeconds,
    skippedMetricExports: () => chunking?.skipped ?? 0,
    logLosses,
    destinations,
    exportWatches: watches,
    async shutdown(deadline: number) {
      closing.begin(deadline);
      const failedBefore = metricsWatch?.totals.itemsFailed ?? 0;
      const lostBefore = logLosses();
      const flushed = Promise.allSettled([meterProvider.shutdown({ timeoutMillis: Math.max(1, deadline - Date.now()) }), loggerProvider.shutdown()]);
      let timer: NodeJS.Timeout | undefined;
      // The transports end their calls at the deadline; this bounds what else might wait (a reader, a queue).
      const finished = await Promise.race([
        flushed.then(() => true),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()) + SHUTDOWN_SETTLE_MS))),
      ]);
      clearTimeout(timer);
      const lostAfter = logLosses();
      const lastFailure = watches.find((w) => w.isFailing)?.lastCause;
      return {
        finished,
        metricPointsNotSent: (metricsWatch?.totals.itemsFailed ?? 0) - failedBefore,
        logRecordsNotSent:
          lostAfter.queueFull - lostBefore.queueFull + lostAfter.exportFailed - lostBefore.exportFailed + logQueues.reduce((n, q) => n + q.pending, 0),
        ...(lastFailure ? { lastFailure } : {}),
      };
    },
  };
}
