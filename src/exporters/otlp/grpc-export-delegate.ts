/**
 * What the OTLP/gRPC exporters of every signal share: the OpenTelemetry
 * export delegate (serializing, its concurrency limit and the
 * otel.sdk.exporter.* self-metrics) around our gRPC transport, and those
 * self-metrics labelled with each export's gRPC status name, as the
 * OpenTelemetry gRPC exporters label them.
 */
import type { MeterProvider } from '@opentelemetry/api';
import { createOtlpNetworkExportDelegate, ExporterMetrics, type IOtlpExportDelegate } from '@opentelemetry/otlp-exporter-base';
import type { IExporterMetricsHelper, ISerializer } from '@opentelemetry/otlp-transformer';
import { GrpcCallError, GrpcChannel, grpcStatusName } from './grpc-channel';
import type { GrpcEndpoint } from './grpc-endpoint';
import { DEFAULT_RETRY, GrpcExportTransport } from './grpc-transport';
import type { ExportClosing } from './closing';

const ATTR_RPC_RESPONSE_STATUS_CODE = 'rpc.response.status_code';
/** Requests the delegate lets be in flight at once (the OpenTelemetry default); metrics are sent one after another. */
const CONCURRENCY_LIMIT = 30;

export interface OtlpGrpcConfig {
  endpoint: GrpcEndpoint;
  timeoutMillis: number;
  userAgent: string;
  /** The agent's stop, which ends retries and calls (./closing). */
  closing?: ExportClosing;
  /** Told of each partial success: how many items the collector refused, and its message. */
  onRejected?: (items: number, message: string) => void;
}

/** One signal's Export method and the names its exporter's self-metrics go under. */
export interface OtlpGrpcSignal<Internal> {
  /** The component type the OpenTelemetry gRPC exporter of this signal reports its own metrics under. */
  componentType: string;
  path: string;
  metricsHelper: IExporterMetricsHelper<Internal>;
}

export function grpcExporterMetrics<Internal>(signal: OtlpGrpcSignal<Internal>, endpoint: GrpcEndpoint, meterProvider: MeterProvider | undefined): ExporterMetrics<Internal> {
  return new ExporterMetrics({
    componentType: signal.componentType,
    metricsHelper: signal.metricsHelper,
    url: endpoint.url.href,
    meterProvider,
    responseAttributesFromError: (error) => {
      if (!error) return { [ATTR_RPC_RESPONSE_STATUS_CODE]: 'OK' };
      return error instanceof GrpcCallError ? { [ATTR_RPC_RESPONSE_STATUS_CODE]: grpcStatusName(error.code) } : {};
    },
  });
}

/** `onSent`: each request once the transport no longer reads it (its buffer may take the next one). */
export function grpcExportDelegate<Internal, Response>(
  config: OtlpGrpcConfig,
  signal: OtlpGrpcSignal<Internal>,
  serializer: ISerializer<Internal, Response>,
  onSent?: (request: Uint8Array) => void,
): IOtlpExportDelegate<Internal> {
  const { endpoint, userAgent, timeoutMillis, onRejected } = config;
  return createOtlpNetworkExportDelegate(
    { timeoutMillis, concurrencyLimit: CONCURRENCY_LIMIT, compression: endpoint.gzip ? 'gzip' : 'none' },
    onRejected ? reportingPartialSuccess(serializer, onRejected) : serializer,
    grpcExporterMetrics(signal, endpoint, undefined),
    new GrpcExportTransport(new GrpcChannel({ endpoint, userAgent }), signal.path, onSent, DEFAULT_RETRY, config.closing),
  );
}

/** The partial-success part of an OTLP Export response, any signal (the rejected count is an int64). */
interface PartialSuccess {
  rejectedDataPoints?: unknown;
  rejectedLogRecords?: unknown;
  rejectedSpans?: unknown;
  errorMessage?: string;
}

/**
 * `serializer`, telling `onRejected` what each response's partial success
 * refused. The delegate would only write it to the diagnostic log, once per
 * export; the export watch counts it and rate-limits the telling.
 */
export function reportingPartialSuccess<Internal, Response>(
  serializer: ISerializer<Internal, Response>,
  onRejected: (items: number, message: string) => void,
): ISerializer<Internal, Response> {
  return {
    serializeRequest: (request) => serializer.serializeRequest(request),
    deserializeResponse: (data) => {
      const response = serializer.deserializeResponse(data);
      const partial = (response as { partialSuccess?: PartialSuccess | null }).partialSuccess;
      if (partial) {
        const rejected = Number(partial.rejectedDataPoints ?? partial.rejectedLogRecords ?? partial.rejectedSpans ?? 0);
        // A message with nothing rejected is a warning from the collector; the specification lets it send one.
        if (rejected > 0 || partial.errorMessage) onRejected(rejected, partial.errorMessage ?? '');
      }
      return response;
    },
  };
}
