/**
 * The OTLP metric exporter: the OpenTelemetry export delegate (its
 * concurrency limit, export timeout and self-metrics) with our request
 * encoder and our gRPC or HTTP transport. Each protobuf request is written
 * into the buffer of the one before, once the transport gave that back, and
 * sent from it without a copy (src/exporters/otlp/grpc-channel.ts). OTLP/HTTP
 * with JSON bodies uses the OpenTelemetry JSON serializer.
 */
import type { MeterProvider } from '@opentelemetry/api';
import { OTLPMetricExporterBase, type OTLPMetricExporterOptions } from '@opentelemetry/exporter-metrics-otlp-http';
import {
  JsonMetricsSerializer,
  MetricsExporterMetricsHelper,
  ProtobufMetricsSerializer,
  type IExportMetricsServiceResponse,
  type ISerializer,
} from '@opentelemetry/otlp-transformer';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { otlpExportDelegate, otlpExporterMetrics, type OtlpExporterConfig, type OtlpSignal } from './export-delegate';
import { MetricsRequestEncoder } from './metrics-request';

const METRICS: OtlpSignal<ResourceMetrics> = {
  componentType: { grpc: 'otlp_grpc_metric_exporter', 'http/protobuf': 'otlp_http_metric_exporter', 'http/json': 'otlp_http_json_metric_exporter' },
  path: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
  metricsHelper: MetricsExporterMetricsHelper,
};

export class MetricsSerializer implements ISerializer<ResourceMetrics, IExportMetricsServiceResponse> {
  private readonly encoder = new MetricsRequestEncoder();

  serializeRequest(request: ResourceMetrics): Uint8Array | undefined {
    // Kinds we never produce (exponential histograms, from a user's view) go through the SDK's own serializer.
    if (!MetricsRequestEncoder.handles(request)) return ProtobufMetricsSerializer.serializeRequest(request);
    return this.encoder.encode(request);
  }

  /** The transport is done with a request: the next one may reuse its buffer. */
  release(request: Uint8Array): void {
    this.encoder.release(request);
  }

  deserializeResponse(data: Uint8Array): IExportMetricsServiceResponse {
    return ProtobufMetricsSerializer.deserializeResponse(data);
  }
}

export type OtlpMetricExporterConfig = OtlpExporterConfig & OTLPMetricExporterOptions;

export class OtlpMetricExporter extends OTLPMetricExporterBase {
  constructor(private readonly config: OtlpMetricExporterConfig) {
    super(OtlpMetricExporter.delegate(config), config);
  }

  /** Our protobuf encoder, whose request buffers come back once sent; the OpenTelemetry JSON serializer for http/json. */
  private static delegate(config: OtlpMetricExporterConfig) {
    if (config.protocol === 'http/json') return otlpExportDelegate(config, METRICS, JsonMetricsSerializer);
    const serializer = new MetricsSerializer();
    return otlpExportDelegate(config, METRICS, serializer, (request) => serializer.release(request));
  }

  /** Counts the exporter's own sent and failed points (otel.sdk.exporter.*) into `meterProvider`. */
  setSelfObsMeterProvider(meterProvider: MeterProvider): void {
    this.setMetrics(otlpExporterMetrics(METRICS, this.config, meterProvider));
  }
}
