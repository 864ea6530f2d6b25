/**
 * Where and how an OTLP/gRPC signal is sent: the endpoint from Flowtel's
 * config, and from the standard OpenTelemetry variables the TLS material,
 * the headers and the compression. A signal-specific variable
 * (OTEL_EXPORTER_OTLP_METRICS_HEADERS) wins over the generic one
 * (OTEL_EXPORTER_OTLP_HEADERS), as the OTLP exporter specification says.
 * Unlike the OpenTelemetry JS exporter, a file that cannot be read or a
 * value that is not understood is an error at start-up, not a warning: an
 * agent that silently sends without its client certificate is only found
 * out when the collector refuses it.
 */
import fs from 'node:fs';
import { parseKeyPairsIntoRecord } from '@opentelemetry/core';
import { ConfigError } from '../../config/schema';

export type OtlpSignal = 'METRICS' | 'LOGS';

export interface GrpcEndpoint {
  /** http:// (plaintext HTTP/2) or https:// (TLS); the scheme decides, as the specification says. */
  url: URL;
  /** TLS material; undefined for http://. An empty object means the system's trusted CAs and no client certificate. */
  tls: { ca?: Buffer; cert?: Buffer; key?: Buffer } | undefined;
  /** Sent with every call (gRPC metadata); lower-case keys. */
  headers: Record<string, string>;
  gzip: boolean;
}

/** The signal-specific variable's value, else the generic one's (blank counts as unset); with the name that supplied it. */
function variable(env: NodeJS.ProcessEnv, signal: OtlpSignal, suffix: string): { name: string; value: string } | undefined {
  for (const name of [`OTEL_EXPORTER_OTLP_${signal}_${suffix}`, `OTEL_EXPORTER_OTLP_${suffix}`]) {
    const value = env[name]?.trim();
    if (value) return { name, value };
  }
  return undefined;
}

function readPemFile(env: NodeJS.ProcessEnv, signal: OtlpSignal, suffix: string, what: string): Buffer | undefined {
  const found = variable(env, signal, suffix);
  if (!found) return undefined;
  try {
    return fs.readFileSync(found.value);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(found.name, found.value, `a readable PEM file with ${what} (reading it failed: ${code})`, `environment variable ${found.name}`);
  }
}

/** Headers of both variables merged, the signal's winning, then `configured` (Flowtel's config) over both. */
function headersOf(env: NodeJS.ProcessEnv, signal: OtlpSignal, configured: Record<string, string>): Record<string, string> {
  const merged: Record<string, string> = {};
  const check = (key: string, source: string) => {
    // Binary metadata would need base64 values; pseudo-headers and these are the protocol's own.
    if (key.endsWith('-bin') || key.startsWith(':') || RESERVED_HEADERS.has(key)) {
      throw new ConfigError('exporters.otlp.headers', key, 'an ordinary text header name (not a -bin, pseudo or gRPC protocol header)', source);
    }
  };
  for (const name of [`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_${signal}_HEADERS`]) {
    const raw = env[name]?.trim();
    if (!raw) continue;
    for (const [key, value] of Object.entries(parseKeyPairsIntoRecord(raw))) {
      check(key.toLowerCase(), `environment variable ${name}`);
      merged[key.toLowerCase()] = value;
    }
  }
  for (const [key, value] of Object.entries(configured)) {
    check(key.toLowerCase(), 'exporters.otlp.headers');
    merged[key.toLowerCase()] = value;
  }
  return merged;
}

const RESERVED_HEADERS = new Set(['content-type', 'te', 'grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding', 'user-agent']);

export function resolveGrpcEndpoint(endpoint: string, signal: OtlpSignal, configuredHeaders: Record<string, string>, env: NodeJS.ProcessEnv = process.env): GrpcEndpoint {
  const expected = 'an http:// or https:// URL such as http://otel-collector:4317';
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new ConfigError('exporters.otlp.endpoint', endpoint, expected, 'the agent configuration');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError('exporters.otlp.endpoint', endpoint, expected, 'the agent configuration');
  let tls: GrpcEndpoint['tls'];
  if (url.protocol === 'https:') {
    const ca = readPemFile(env, signal, 'CERTIFICATE', 'the CA certificates that sign the collector');
    const cert = readPemFile(env, signal, 'CLIENT_CERTIFICATE', 'the client certificate chain');
    const key = readPemFile(env, signal, 'CLIENT_KEY', 'the client private key');
    if ((cert === undefined) !== (key === undefined)) {
      const [missing, other] = cert ? ['CLIENT_KEY', 'CLIENT_CERTIFICATE'] : ['CLIENT_CERTIFICATE', 'CLIENT_KEY'];
      const name = `OTEL_EXPORTER_OTLP_${missing}`;
      throw new ConfigError(name, undefined, `a PEM file, set together with OTEL_EXPORTER_OTLP_${other} (a client certificate needs its key)`, `environment variable ${name}`);
    }
    tls = { ...(ca ? { ca } : {}), ...(cert && key ? { cert, key } : {}) };
  }
  const compression = variable(env, signal, 'COMPRESSION');
  if (compression && compression.value !== 'gzip' && compression.value !== 'none') {
    throw new ConfigError(compression.name, compression.value, 'gzip or none', `environment variable ${compression.name}`);
  }
  return { url, tls, headers: headersOf(env, signal, configuredHeaders), gzip: compression?.value === 'gzip' };
}
