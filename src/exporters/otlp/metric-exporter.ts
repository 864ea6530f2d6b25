/**
 * The OTLP/gRPC metric exporter with our request encoder. Transport,
 * retries, timeouts, headers and the exporter's self-metrics are the
 * OpenTelemetry exporter's own (the same delegate its OTLPMetricExporter
 * builds); only the bytes of each request come from MetricsRequestEncoder.
 */
import type { MeterProvider } from '@opentelemetry/api';
import { OTLPMetricExporterBase, type OTLPMetricExporterOptions } from '@opentelemetry/exporter-metrics-otlp-http';
import {
  convertLegacyOtlpGrpcOptions,
  createOtlpGrpcExportDelegate,
  createOtlpGrpcExporterMetrics,
  type OTLPGRPCExporterConfigNode,
} from '@opentelemetry/otlp-grpc-exporter-base';
import { MetricsExporterMetricsHelper, ProtobufMetricsSerializer, type IExportMetricsServiceResponse, type ISerializer } from '@opentelemetry/otlp-transformer';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { MetricsRequestEncoder } from './metrics-request';

/** The component type the OpenTelemetry gRPC metric exporter reports its own metrics under. */
const COMPONENT_TYPE = 'otlp_grpc_metric_exporter';
const SERVICE = 'MetricsExportService';
const EXPORT_PATH = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';

export class MetricsSerializer implements ISerializer<ResourceMetrics, IExportMetricsServiceResponse> {
  private readonly encoder = new MetricsRequestEncoder();

  serializeRequest(request: ResourceMetrics): Uint8Array | undefined {
    // Kinds we never produce (exponential histograms, from a user's view) go through the SDK's own serializer.
    if (!MetricsRequestEncoder.handles(request)) return ProtobufMetricsSerializer.serializeRequest(request);
    return this.encoder.encode(request);
  }

  deserializeResponse(data: Uint8Array): IExportMetricsServiceResponse {
    return ProtobufMetricsSerializer.deserializeResponse(data);
  }
}

export type OtlpMetricExporterConfig = OTLPGRPCExporterConfigNode & OTLPMetricExporterOptions;

export class OtlpGrpcMetricExporter extends OTLPMetricExporterBase {
  constructor(private readonly config: OtlpMetricExporterConfig) {
    super(
      createOtlpGrpcExportDelegate(
        convertLegacyOtlpGrpcOptions(config, 'METRICS'),
        new MetricsSerializer(),
        COMPONENT_TYPE,
        MetricsExporterMetricsHelper,
        undefined,
        SERVICE,
        EXPORT_PATH,
      ),
      config,
    );
  }

  /** Counts the exporter's own sent and failed points (otel.sdk.exporter.*) into `meterProvider`. */
  setSelfObsMeterProvider(meterProvider: MeterProvider): void {
    this.setMetrics(createOtlpGrpcExporterMetrics(COMPONENT_TYPE, MetricsExporterMetricsHelper, this.config.url, meterProvider));
  }
}
