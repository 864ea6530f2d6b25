/**
 * The OTLP/gRPC log record exporter: the OpenTelemetry export delegate and
 * logs serializer on our gRPC transport, the same one the metrics use, so
 * the agent loads no second gRPC stack.
 */
import type { MeterProvider } from '@opentelemetry/api';
import { OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
import { LogsExporterMetricsHelper, ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import type { LogRecordExporter, ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { grpcExportDelegate, grpcExporterMetrics, type OtlpGrpcConfig, type OtlpGrpcSignal } from './grpc-export-delegate';

const LOGS: OtlpGrpcSignal<ReadableLogRecord[]> = {
  componentType: 'otlp_grpc_log_exporter',
  path: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
  metricsHelper: LogsExporterMetricsHelper,
};

export class OtlpGrpcLogExporter extends OTLPExporterBase<ReadableLogRecord[]> implements LogRecordExporter {
  constructor(private readonly config: OtlpGrpcConfig) {
    super(grpcExportDelegate(config, LOGS, ProtobufLogsSerializer));
  }

  /** Counts the exporter's own sent and failed log records (otel.sdk.exporter.*) into `meterProvider`. */
  setSelfObsMeterProvider(meterProvider: MeterProvider): void {
    this.setMetrics(grpcExporterMetrics(LOGS, this.config.endpoint, meterProvider));
  }
}
