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
import crypto from 'node:crypto';
import fs from 'node:fs';
import tls from 'node:tls';
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

function readPemFile(env: NodeJS.ProcessEnv, signal: OtlpSignal, suffix: string, what: string): { name: string; path: string; pem: Buffer } | undefined {
  const found = variable(env, signal, suffix);
  if (!found) return undefined;
  try {
    return { name: found.name, path: found.value, pem: fs.readFileSync(found.value) };
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

/** gRPC's own headers, and the connection-specific ones HTTP/2 forbids (RFC 9113, 8.2.2). */
const RESERVED_HEADERS = new Set([
  'content-type',
  'te',
  'grpc-timeout',
  'grpc-encoding',
  'grpc-accept-encoding',
  'user-agent',
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'host',
]);

/** Node parses the files the way a connection will: a PEM it cannot read, or a key that is not the certificate's, stops the agent now. */
function usableTls(material: NonNullable<GrpcEndpoint['tls']>, files: Array<{ name: string; path: string } | undefined>): void {
  try {
    // Node skips a CA file with no certificate in it (every collector would then fail the handshake): parse its first.
    if (material.ca) new crypto.X509Certificate(material.ca);
    tls.createSecureContext(material);
  } catch (err) {
    const given = files.filter((f): f is { name: string; path: string } => f !== undefined);
    const names = given.map((f) => f.name).join(', ');
    throw new ConfigError(names, given.map((f) => f.path).join(', '), `PEM files node can use for TLS (${(err as Error).message})`, `environment variables ${names}`);
  }
}

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
      const present = (cert ?? key)!.name;
      const name = cert ? present.replace(/CLIENT_CERTIFICATE$/, 'CLIENT_KEY') : present.replace(/CLIENT_KEY$/, 'CLIENT_CERTIFICATE');
      throw new ConfigError(name, undefined, `a PEM file, set together with ${present} (a client certificate needs its key)`, `environment variable ${name}`);
    }
    tls = { ...(ca ? { ca: ca.pem } : {}), ...(cert && key ? { cert: cert.pem, key: key.pem } : {}) };
    usableTls(tls, [ca, cert, key]);
  }
  const compression = variable(env, signal, 'COMPRESSION');
  if (compression && compression.value !== 'gzip' && compression.value !== 'none') {
    throw new ConfigError(compression.name, compression.value, 'gzip or none', `environment variable ${compression.name}`);
  }
  return { url, tls, headers: headersOf(env, signal, configuredHeaders), gzip: compression?.value === 'gzip' };
}
