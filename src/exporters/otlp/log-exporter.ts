/**
 * The OTLP log record exporter: the OpenTelemetry export delegate and logs
 * serializer (protobuf, or JSON for http/json) on our transports, the same
 * ones the metrics use, so the agent loads no second gRPC or HTTP stack.
 */
import type { MeterProvider } from '@opentelemetry/api';
import { OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
import { JsonLogsSerializer, LogsExporterMetricsHelper, ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import type { LogRecordExporter, ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { otlpExportDelegate, otlpExporterMetrics, type OtlpExporterConfig, type OtlpSignal } from './export-delegate';

const LOGS: OtlpSignal<ReadableLogRecord[]> = {
  componentType: { grpc: 'otlp_grpc_log_exporter', 'http/protobuf': 'otlp_http_log_exporter', 'http/json': 'otlp_http_json_log_exporter' },
  path: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
  metricsHelper: LogsExporterMetricsHelper,
};

export class OtlpLogExporter extends OTLPExporterBase<ReadableLogRecord[]> implements LogRecordExporter {
  constructor(private readonly config: OtlpExporterConfig) {
    super(otlpExportDelegate(config, LOGS, config.protocol === 'http/json' ? JsonLogsSerializer : ProtobufLogsSerializer));
  }

  /** Counts the exporter's own sent and failed log records (otel.sdk.exporter.*) into `meterProvider`. */
  setSelfObsMeterProvider(meterProvider: MeterProvider): void {
    this.setMetrics(otlpExporterMetrics(LOGS, this.config, meterProvider));
  }
}
