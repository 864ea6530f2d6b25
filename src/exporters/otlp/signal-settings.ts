/**
 * Where and how each OTLP signal is sent, resolved once from Flowtel's
 * config and the OTLP exporter variables of the OpenTelemetry
 * specification: endpoint, protocol, headers, timeout, compression,
 * certificate, client certificate and key, insecure, each with its
 * per-signal form (OTEL_EXPORTER_OTLP_METRICS_*), which wins. `validate`
 * prints the result; `run`, `doctor` and the pipeline use the same.
 *
 * Endpoints follow the specification: the generic one (config
 * exporters.otlp.endpoint, or OTEL_EXPORTER_OTLP_ENDPOINT) is the
 * collector's base URL, to which OTLP/HTTP appends v1/metrics or v1/logs; a
 * per-signal one is used as it is. A signal with neither is not exported
 * over OTLP.
 */
import { OTLP_PROTOCOLS, type FlowtelConfig, type OtlpProtocol } from '../../config/config';
import { ConfigError } from '../../config/schema';
import type { OtlpExporterConfig } from './export-delegate';
import { resolveGrpcEndpoint, type GrpcEndpoint, type OtlpSignal } from './grpc-endpoint';

export interface OtlpSignalSettings extends GrpcEndpoint {
  signal: OtlpSignal;
  protocol: OtlpProtocol;
  /** How long one export may take, retries included. */
  timeoutMs: number;
  /** What set the endpoint: a config field or an environment variable. */
  endpointSource: string;
}

export interface OtlpSettings {
  metrics?: OtlpSignalSettings;
  logs?: OtlpSignalSettings;
}

type OtlpConfig = FlowtelConfig['exporters']['otlp'];

/** The per-signal variable's value, else the generic one's (blank counts as unset), with the name that supplied it. */
function variable(env: NodeJS.ProcessEnv, signal: OtlpSignal, suffix: string): { name: string; value: string } | undefined {
  for (const name of [`OTEL_EXPORTER_OTLP_${signal}_${suffix}`, `OTEL_EXPORTER_OTLP_${suffix}`]) {
    const value = env[name]?.trim();
    if (value) return { name, value };
  }
  return undefined;
}

function protocolOf(otlp: OtlpConfig, signal: OtlpSignal, env: NodeJS.ProcessEnv): OtlpProtocol {
  const found = variable(env, signal, 'PROTOCOL');
  if (!found) return otlp.protocol;
  if (!(OTLP_PROTOCOLS as readonly string[]).includes(found.value)) {
    throw new ConfigError(found.name, found.value, `one of ${OTLP_PROTOCOLS.join(', ')}`, `environment variable ${found.name}`);
  }
  return found.value as OtlpProtocol;
}

function timeoutOf(otlp: OtlpConfig, signal: OtlpSignal, env: NodeJS.ProcessEnv): number {
  const found = variable(env, signal, 'TIMEOUT');
  if (!found) return otlp.exportTimeoutMs;
  const ms = Number(found.value);
  if (!/^\d+$/.test(found.value) || ms < 100 || ms > 600_000) {
    throw new ConfigError(found.name, found.value, 'milliseconds, an integer from 100 to 600000', `environment variable ${found.name}`);
  }
  return ms;
}

/** true, false or unset: whether a scheme-less gRPC endpoint is plaintext. */
function insecureOf(signal: OtlpSignal, env: NodeJS.ProcessEnv): boolean | undefined {
  const found = variable(env, signal, 'INSECURE');
  if (!found) return undefined;
  const value = found.value.toLowerCase();
  if (value !== 'true' && value !== 'false') throw new ConfigError(found.name, found.value, 'true or false', `environment variable ${found.name}`);
  return value === 'true';
}

/**
 * The per-signal endpoint variable as a URL. The specification lets a gRPC
 * endpoint go without a scheme; INSECURE=true then means plaintext, anything
 * else TLS.
 */
function signalEndpoint(signal: OtlpSignal, env: NodeJS.ProcessEnv, protocol: OtlpProtocol): { url: string; source: string } | undefined {
  const name = `OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`;
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  const source = `environment variable ${name}`;
  const schemeLess = !/^[a-z][a-z0-9+.-]*:\/\//i.test(raw);
  const text = schemeLess && protocol === 'grpc' ? `${insecureOf(signal, env) ? 'http' : 'https'}://${raw}` : raw;
  const expected =
    protocol === 'grpc'
      ? 'an http:// or https:// URL with a host (or host:port, TLS unless OTEL_EXPORTER_OTLP_INSECURE=true)'
      : 'an http:// or https:// URL with a host, used as it is (such as http://collector:4318/v1/metrics)';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(name, raw, expected, source);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') throw new ConfigError(name, raw, expected, source);
  return { url: url.href, source };
}

/** The generic endpoint with the signal's path appended, as OTLP/HTTP does (http://c:4318 → http://c:4318/v1/metrics). */
function withSignalPath(base: string, signal: OtlpSignal): string {
  const url = new URL(base);
  url.pathname = `${url.pathname.replace(/\/*$/, '')}/v1/${signal.toLowerCase()}`;
  return url.href;
}

export function resolveOtlpSignal(otlp: OtlpConfig, signal: OtlpSignal, env: NodeJS.ProcessEnv = process.env): OtlpSignalSettings | undefined {
  const protocol = protocolOf(otlp, signal, env);
  // Checked even where it does not apply: a value nobody can use is a mistake to report.
  insecureOf(signal, env);
  const own = signalEndpoint(signal, env, protocol);
  if (!own && otlp.endpoint === undefined) return undefined;
  const endpoint = own ? own.url : protocol === 'grpc' ? otlp.endpoint! : withSignalPath(otlp.endpoint!, signal);
  const endpointSource = own ? own.source : 'exporters.otlp.endpoint';
  // TLS material, headers and compression: the same variables for both protocols.
  const resolved = resolveGrpcEndpoint(endpoint, signal, otlp.headers, env);
  return { ...resolved, signal, protocol, timeoutMs: timeoutOf(otlp, signal, env), endpointSource };
}

export function resolveOtlpSettings(otlp: OtlpConfig, env: NodeJS.ProcessEnv = process.env): OtlpSettings {
  const metrics = resolveOtlpSignal(otlp, 'METRICS', env);
  const logs = resolveOtlpSignal(otlp, 'LOGS', env);
  return { ...(metrics ? { metrics } : {}), ...(logs ? { logs } : {}) };
}

/** The endpoint as the operator reads it: a gRPC server's origin (http://c:4317), an OTLP/HTTP signal's full URL. */
export function endpointText(s: Pick<OtlpSignalSettings, 'protocol' | 'url'>): string {
  return s.protocol === 'grpc' ? s.url.origin : s.url.href;
}

/** One line for the operator: "metrics: OTLP http/protobuf to http://c:4318/v1/metrics (gzip, timeout 30000 ms, TLS with a CA file)". */
export function describeSignal(s: OtlpSignalSettings): string {
  const details = [
    s.gzip ? 'gzip' : 'no compression',
    `timeout ${s.timeoutMs} ms`,
    s.tls ? `TLS${s.tls.ca ? ' with a CA file' : ' with the system CAs'}${s.tls.cert ? ' and a client certificate' : ''}` : 'plaintext',
    ...(Object.keys(s.headers).length ? [`headers ${Object.keys(s.headers).join(', ')}`] : []),
  ];
  return `${s.signal.toLowerCase()}: OTLP ${s.protocol} to ${endpointText(s)} (${details.join(', ')}; endpoint from ${s.endpointSource})`;
}

/** The settings resolved for one signal, as an exporter's config. */
export function exporterConfig(settings: OtlpSignalSettings, userAgent: string, extra: Partial<OtlpExporterConfig> = {}): OtlpExporterConfig {
  return { endpoint: settings, protocol: settings.protocol, timeoutMillis: settings.timeoutMs, userAgent, ...extra };
}
