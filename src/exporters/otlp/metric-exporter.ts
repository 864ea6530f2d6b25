/**
 * The OTLP/gRPC metric exporter: the OpenTelemetry export delegate (its
 * concurrency limit, export timeout and self-metrics) with our request
 * encoder and our gRPC transport. Each request is written into the buffer
 * of the one before, once the transport gave that back, and sent from it
 * without a copy (src/exporters/otlp/grpc-channel.ts).
 */
import type { MeterProvider } from '@opentelemetry/api';
import { OTLPMetricExporterBase, type OTLPMetricExporterOptions } from '@opentelemetry/exporter-metrics-otlp-http';
import { MetricsExporterMetricsHelper, ProtobufMetricsSerializer, type IExportMetricsServiceResponse, type ISerializer } from '@opentelemetry/otlp-transformer';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { grpcExportDelegate, grpcExporterMetrics, type OtlpGrpcConfig, type OtlpGrpcSignal } from './grpc-export-delegate';
import { MetricsRequestEncoder } from './metrics-request';

const METRICS: OtlpGrpcSignal<ResourceMetrics> = {
  componentType: 'otlp_grpc_metric_exporter',
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

export type OtlpMetricExporterConfig = OtlpGrpcConfig & OTLPMetricExporterOptions;

export class OtlpGrpcMetricExporter extends OTLPMetricExporterBase {
  constructor(private readonly config: OtlpMetricExporterConfig) {
    const serializer = new MetricsSerializer();
    super(grpcExportDelegate(config, METRICS, serializer, (request) => serializer.release(request)), config);
  }

  /** Counts the exporter's own sent and failed points (otel.sdk.exporter.*) into `meterProvider`. */
  setSelfObsMeterProvider(meterProvider: MeterProvider): void {
    this.setMetrics(grpcExporterMetrics(METRICS, this.config.endpoint, meterProvider));
  }
}
