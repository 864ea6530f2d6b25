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
import tls from 'node:tls';
import { readInputFile } from '../../config/input-file';
import { ConfigError, fieldOf, setOwn } from '../../config/schema';

/** A CA bundle of every public root is about 200 KiB. */
const MAX_PEM_FILE_BYTES = 1 << 20;

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
  const pem = readInputFile(found.value, {
    field: found.name,
    source: `environment variable ${found.name}`,
    what: `a readable PEM file with ${what}`,
    maxBytes: MAX_PEM_FILE_BYTES,
  });
  return { name: found.name, path: found.value, pem };
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
    for (const [key, value] of parseHeadersVariable(name, raw)) {
      check(key, `environment variable ${name}`);
      setOwn(merged, key, value);
    }
  }
  for (const [key, value] of Object.entries(configured)) {
    check(key.toLowerCase(), 'exporters.otlp.headers');
    checkHeaderValue('exporters.otlp.headers', key, value, 'exporters.otlp.headers');
    setOwn(merged, key.toLowerCase(), value);
  }
  return merged;
}

/** An HTTP field name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function checkHeaderValue(field: string, key: string, value: string, source: string): void {
  // Visible ASCII, spaces and tabs, and bytes from 0x80 (RFC 9110 field-value); never CR, LF or NUL.
  // eslint-disable-next-line no-control-regex -- control characters are what this check is for
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value)) {
    throw new ConfigError(fieldOf(field, key), value, 'a header value without control characters', source);
  }
}

/**
 * OTEL_EXPORTER_OTLP_HEADERS: comma-separated key=value pairs with
 * percent-encoded values (the W3C Baggage format the specification names).
 * A pair that cannot be read is an error: the collector would otherwise
 * refuse every export for a missing credential, with no hint why.
 */
export function parseHeadersVariable(name: string, raw: string): Array<[string, string]> {
  const source = `environment variable ${name}`;
  const pairs: Array<[string, string]> = [];
  for (const member of raw.split(',')) {
    if (member.trim() === '') continue;
    const eq = member.indexOf('=');
    const key = (eq < 0 ? member : member.slice(0, eq)).trim();
    if (eq < 0 || !HEADER_NAME.test(key)) {
      throw new ConfigError(name, member.trim(), 'comma-separated key=value pairs whose keys are HTTP header names (api-key=secret,tenant=a)', source);
    }
    let value: string;
    try {
      value = decodeURIComponent(member.slice(eq + 1).trim());
    } catch {
      throw new ConfigError(`${name} ${key}`, member.slice(eq + 1).trim(), 'a percent-encoded value (%XX with two hex digits)', source);
    }
    checkHeaderValue(name, key, value, source);
    pairs.push([key.toLowerCase(), value]);
  }
  return pairs;
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
    throw new ConfigError(
      names,
      given.map((f) => f.path).join(', '),
      `PEM files node can use for TLS (${(err as Error).message})`,
      `environment variables ${names}`,
    );
  }
}

export function resolveGrpcEndpoint(
  endpoint: string,
  signal: OtlpSignal,
  configuredHeaders: Record<string, string>,
  env: NodeJS.ProcessEnv = process.env,
): GrpcEndpoint {
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
