/**
 * The OpenTelemetry exporters' own metrics (otel.sdk.exporter.*: points or
 * log records exported and failed, export duration), labelled with the gRPC
 * status of each export as the OpenTelemetry gRPC exporters label them.
 */
import type { MeterProvider } from '@opentelemetry/api';
import { ExporterMetrics } from '@opentelemetry/otlp-exporter-base';
import type { IExporterMetricsHelper } from '@opentelemetry/otlp-transformer';
import { GrpcCallError, grpcStatusName } from './grpc-channel';

const ATTR_RPC_RESPONSE_STATUS_CODE = 'rpc.response.status_code';

export function grpcExporterMetrics<Internal>(
  componentType: string,
  metricsHelper: IExporterMetricsHelper<Internal>,
  url: string,
  meterProvider: MeterProvider | undefined,
): ExporterMetrics<Internal> {
  return new ExporterMetrics({
    componentType,
    metricsHelper,
    url,
    meterProvider,
    responseAttributesFromError: (error) => {
      if (!error) return { [ATTR_RPC_RESPONSE_STATUS_CODE]: 'OK' };
      return error instanceof GrpcCallError ? { [ATTR_RPC_RESPONSE_STATUS_CODE]: grpcStatusName(error.code) } : {};
    },
  });
}
