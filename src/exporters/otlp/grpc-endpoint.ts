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

export class GrpcEndpointError extends Error {}

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
    throw new GrpcEndpointError(`environment variable ${found.name}: cannot read '${found.value}' (${code}); expected a readable PEM file with ${what}`);
  }
}

/** Headers of both variables merged, the signal's winning, then `configured` (Flowtel's config) over both. */
function headersOf(env: NodeJS.ProcessEnv, signal: OtlpSignal, configured: Record<string, string>): Record<string, string> {
  const merged: Record<string, string> = {};
  for (const name of [`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_${signal}_HEADERS`]) {
    const raw = env[name]?.trim();
    if (!raw) continue;
    for (const [key, value] of Object.entries(parseKeyPairsIntoRecord(raw))) merged[key.toLowerCase()] = value;
  }
  for (const [key, value] of Object.entries(configured)) merged[key.toLowerCase()] = value;
  for (const key of Object.keys(merged)) {
    // Binary metadata would need base64 values; pseudo-headers and these are the protocol's own.
    if (key.endsWith('-bin') || key.startsWith(':') || RESERVED_HEADERS.has(key)) {
      throw new GrpcEndpointError(`OTLP header '${key}': expected an ordinary text header (not a -bin, pseudo or gRPC protocol header)`);
    }
  }
  return merged;
}

const RESERVED_HEADERS = new Set(['content-type', 'te', 'grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding', 'user-agent']);

export function resolveGrpcEndpoint(endpoint: string, signal: OtlpSignal, configuredHeaders: Record<string, string>, env: NodeJS.ProcessEnv = process.env): GrpcEndpoint {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new GrpcEndpointError(`OTLP endpoint '${endpoint}': expected an http:// or https:// URL such as http://otel-collector:4317`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new GrpcEndpointError(`OTLP endpoint '${endpoint}': expected an http:// or https:// URL, not ${url.protocol}//`);
  }
  let tls: GrpcEndpoint['tls'];
  if (url.protocol === 'https:') {
    const ca = readPemFile(env, signal, 'CERTIFICATE', 'the CA certificates that sign the collector');
    const cert = readPemFile(env, signal, 'CLIENT_CERTIFICATE', 'the client certificate chain');
    const key = readPemFile(env, signal, 'CLIENT_KEY', 'the client private key');
    if ((cert === undefined) !== (key === undefined)) {
      throw new GrpcEndpointError(
        `environment variables OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY: expected both or neither, got only the ${cert ? 'certificate' : 'key'}`,
      );
    }
    tls = { ...(ca ? { ca } : {}), ...(cert && key ? { cert, key } : {}) };
  }
  const compression = variable(env, signal, 'COMPRESSION');
  if (compression && compression.value !== 'gzip' && compression.value !== 'none') {
    throw new GrpcEndpointError(`environment variable ${compression.name}: '${compression.value}' is not supported; expected gzip or none`);
  }
  return { url, tls, headers: headersOf(env, signal, configuredHeaders), gzip: compression?.value === 'gzip' };
}
