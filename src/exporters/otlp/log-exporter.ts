/**
 * The OTLP/gRPC log record exporter: the OpenTelemetry export delegate and
 * logs serializer on our gRPC transport, the same one the metrics use, so
 * the agent loads no second gRPC stack.
 */
import type { MeterProvider } from '@opentelemetry/api';
import { createOtlpNetworkExportDelegate, OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
import { LogsExporterMetricsHelper, ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import type { LogRecordExporter, ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { GrpcChannel } from './grpc-channel';
import type { GrpcEndpoint } from './grpc-endpoint';
import { grpcExporterMetrics } from './grpc-exporter-metrics';
import { GrpcExportTransport } from './grpc-transport';

/** The component type the OpenTelemetry gRPC log exporter reports its own metrics under. */
const COMPONENT_TYPE = 'otlp_grpc_log_exporter';
const EXPORT_PATH = '/opentelemetry.proto.collector.logs.v1.LogsService/Export';
const CONCURRENCY_LIMIT = 30;

export interface OtlpLogExporterConfig {
  endpoint: GrpcEndpoint;
  timeoutMillis: number;
  userAgent: string;
}

export class OtlpGrpcLogExporter extends OTLPExporterBase<ReadableLogRecord[]> implements LogRecordExporter {
  constructor(private readonly config: OtlpLogExporterConfig) {
    super(
      createOtlpNetworkExportDelegate(
        { timeoutMillis: config.timeoutMillis, concurrencyLimit: CONCURRENCY_LIMIT, compression: config.endpoint.gzip ? 'gzip' : 'none' },
        ProtobufLogsSerializer,
        grpcExporterMetrics(COMPONENT_TYPE, LogsExporterMetricsHelper, config.endpoint.url.href, undefined),
        new GrpcExportTransport(new GrpcChannel(config), EXPORT_PATH),
      ),
    );
  }

  /** Counts the exporter's own sent and failed log records (otel.sdk.exporter.*) into `meterProvider`. */
  setSelfObsMeterProvider(meterProvider: MeterProvider): void {
    this.setMetrics(grpcExporterMetrics(COMPONENT_TYPE, LogsExporterMetricsHelper, this.config.endpoint.url.href, meterProvider));
  }
}
