/**
 * The OTLP/gRPC metric exporter: the OpenTelemetry export delegate (its
 * concurrency limit, export timeout and self-metrics) with our request
 * encoder and our gRPC transport. Each request is written into the buffer
 * of the one before (MetricsRequestEncoder's reuseBuffer) and sent from it
 * without a copy (src/exporters/otlp/grpc-channel.ts).
 */
import type { MeterProvider } from '@opentelemetry/api';
import { OTLPMetricExporterBase, type OTLPMetricExporterOptions } from '@opentelemetry/exporter-metrics-otlp-http';
import { createOtlpNetworkExportDelegate } from '@opentelemetry/otlp-exporter-base';
import { MetricsExporterMetricsHelper, ProtobufMetricsSerializer, type IExportMetricsServiceResponse, type ISerializer } from '@opentelemetry/otlp-transformer';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { GrpcChannel } from './grpc-channel';
import type { GrpcEndpoint } from './grpc-endpoint';
import { grpcExporterMetrics } from './grpc-exporter-metrics';
import { GrpcExportTransport } from './grpc-transport';
import { MetricsRequestEncoder } from './metrics-request';

/** The component type the OpenTelemetry gRPC metric exporter reports its own metrics under. */
const COMPONENT_TYPE = 'otlp_grpc_metric_exporter';
const EXPORT_PATH = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';
/** Requests the delegate lets be in flight at once (the OpenTelemetry default); ours are sent one after another. */
const CONCURRENCY_LIMIT = 30;

export class MetricsSerializer implements ISerializer<ResourceMetrics, IExportMetricsServiceResponse> {
  private readonly encoder = new MetricsRequestEncoder(true);

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

export interface OtlpMetricExporterConfig extends OTLPMetricExporterOptions {
  endpoint: GrpcEndpoint;
  timeoutMillis: number;
  userAgent: string;
}

export class OtlpGrpcMetricExporter extends OTLPMetricExporterBase {
  constructor(private readonly config: OtlpMetricExporterConfig) {
    const serializer = new MetricsSerializer();
    const transport = new GrpcExportTransport(new GrpcChannel(config), EXPORT_PATH, (request) => serializer.release(request));
    super(
      createOtlpNetworkExportDelegate(
        { timeoutMillis: config.timeoutMillis, concurrencyLimit: CONCURRENCY_LIMIT, compression: config.endpoint.gzip ? 'gzip' : 'none' },
        serializer,
        grpcExporterMetrics(COMPONENT_TYPE, MetricsExporterMetricsHelper, config.endpoint.url.href, undefined),
        transport,
      ),
      config,
    );
  }

  /** Counts the exporter's own sent and failed points (otel.sdk.exporter.*) into `meterProvider`. */
  setSelfObsMeterProvider(meterProvider: MeterProvider): void {
    this.setMetrics(grpcExporterMetrics(COMPONENT_TYPE, MetricsExporterMetricsHelper, this.config.endpoint.url.href, meterProvider));
  }
}
