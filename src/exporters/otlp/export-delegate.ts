/**
 * What the OTLP exporters of every signal share: the OpenTelemetry export
 * delegate (serializing, its concurrency limit and the otel.sdk.exporter.*
 * self-metrics) around our transport for the configured protocol, gRPC or
 * HTTP, and those self-metrics labelled with each failure's gRPC status
 * name or HTTP status code, as the OpenTelemetry exporters label them.
 */
import type { MeterProvider } from '@opentelemetry/api';
import { createOtlpNetworkExportDelegate, ExporterMetrics, type IExporterTransport, type IOtlpExportDelegate } from '@opentelemetry/otlp-exporter-base';
import type { IExporterMetricsHelper, ISerializer } from '@opentelemetry/otlp-transformer';
import type { OtlpProtocol } from '../../config/config';
import type { ExportClosing } from './closing';
import { GrpcCallError, GrpcChannel, grpcStatusName } from './grpc-channel';
import type { GrpcEndpoint } from './grpc-endpoint';
import { GrpcExportTransport } from './grpc-transport';
import { DEFAULT_RETRY } from './retry';
import { HttpExportError, HttpExportTransport } from './http-transport';

const ATTR_RPC_RESPONSE_STATUS_CODE = 'rpc.response.status_code';
const ATTR_HTTP_RESPONSE_STATUS_CODE = 'http.response.status_code';
/** Requests the delegate lets be in flight at once (the OpenTelemetry default); metrics are sent one after another. */
const CONCURRENCY_LIMIT = 30;

export interface OtlpExporterConfig {
  /** Where to send; for OTLP/HTTP its url is the signal's full URL (…/v1/metrics). */
  endpoint: GrpcEndpoint;
  /** gRPC unless said otherwise. */
  protocol?: OtlpProtocol;
  timeoutMillis: number;
  userAgent: string;
  /** The agent's stop, which ends retries and calls (./closing). */
  closing?: ExportClosing;
  /** Told of each partial success: how many items the collector refused, and its message. */
  onRejected?: (items: number, message: string) => void;
}

/** One signal's Export method and the names its exporter's self-metrics go under, per protocol. */
export interface OtlpSignal<Internal> {
  /** gRPC method path. */
  path: string;
  /** The component type the OpenTelemetry exporter of this signal reports its own metrics under, by protocol. */
  componentType: Record<OtlpProtocol, string>;
  metricsHelper: IExporterMetricsHelper<Internal>;
}

export function otlpExporterMetrics<Internal>(
  signal: OtlpSignal<Internal>,
  config: OtlpExporterConfig,
  meterProvider: MeterProvider | undefined,
): ExporterMetrics<Internal> {
  const protocol = config.protocol ?? 'grpc';
  return new ExporterMetrics({
    componentType: signal.componentType[protocol],
    metricsHelper: signal.metricsHelper,
    url: config.endpoint.url.href,
    meterProvider,
    responseAttributesFromError: (error) => {
      if (protocol !== 'grpc') {
        if (!error) return { [ATTR_HTTP_RESPONSE_STATUS_CODE]: 200 };
        return error instanceof HttpExportError && error.statusCode !== undefined ? { [ATTR_HTTP_RESPONSE_STATUS_CODE]: error.statusCode } : {};
      }
      if (!error) return { [ATTR_RPC_RESPONSE_STATUS_CODE]: 'OK' };
      return error instanceof GrpcCallError ? { [ATTR_RPC_RESPONSE_STATUS_CODE]: grpcStatusName(error.code) } : {};
    },
  });
}

const CONTENT_TYPE: Record<Exclude<OtlpProtocol, 'grpc'>, string> = {
  'http/protobuf': 'application/x-protobuf',
  'http/json': 'application/json',
};

function transportFor(config: OtlpExporterConfig, path: string, onSent?: (request: Uint8Array) => void): IExporterTransport {
  const { endpoint, userAgent, closing } = config;
  const protocol = config.protocol ?? 'grpc';
  if (protocol === 'grpc') return new GrpcExportTransport(new GrpcChannel({ endpoint, userAgent }), path, onSent, DEFAULT_RETRY, closing);
  return new HttpExportTransport(endpoint, CONTENT_TYPE[protocol], userAgent, onSent, DEFAULT_RETRY, closing);
}

/** `onSent`: each request once the transport no longer reads it (its buffer may take the next one). */
export function otlpExportDelegate<Internal, Response>(
  config: OtlpExporterConfig,
  signal: OtlpSignal<Internal>,
  serializer: ISerializer<Internal, Response>,
  onSent?: (request: Uint8Array) => void,
): IOtlpExportDelegate<Internal> {
  const { endpoint, timeoutMillis, onRejected } = config;
  return createOtlpNetworkExportDelegate(
    // gzip is applied by our transports (compression here only names it for the delegate's own use).
    { timeoutMillis, concurrencyLimit: CONCURRENCY_LIMIT, compression: endpoint.gzip ? 'gzip' : 'none' },
    onRejected ? reportingPartialSuccess(serializer, onRejected) : serializer,
    otlpExporterMetrics(signal, config, undefined),
    transportFor(config, signal.path, onSent),
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
