/**
 * Flowtel's configuration: the schema, its defaults, and how the layers
 * combine. Precedence, lowest first: defaults, OpenTelemetry environment
 * variables, the config file, command-line flags. Validated here once; inner
 * code trusts the typed result.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { PROBE_GROUPS, probesDefaults, probesSchema, type ProbesConfig } from '../probes/registry';
import { readInputFile } from './input-file';
import {
  ConfigError,
  clip,
  DeepPartial,
  boolean,
  deepMerge,
  httpUrl,
  integer,
  listenAddress,
  object,
  oneOf,
  setAt,
  specAt,
  string,
  stringList,
  stringMap,
} from './schema';

/** OTLP protocols, as OTEL_EXPORTER_OTLP_PROTOCOL names them. */
export const OTLP_PROTOCOLS = ['grpc', 'http/protobuf', 'http/json'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

const CGROUP2_SUPER_MAGIC = 0x63677270;
/** A config file is a few KiB; a megabyte is a mistake, not a config. */
const MAX_CONFIG_FILE_BYTES = 1 << 20;

export const configSchema = object({
  nodeName: string({ pattern: /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, expected: 'a Kubernetes node name (lowercase DNS subdomain)' }),
  cgroupRoot: string({ expected: 'the path of the cgroup v2 mount' }),
  bpfObjectDir: string({ expected: 'the directory holding the *.bpf.o files' }),
  logLevel: oneOf(['debug', 'info', 'warn', 'error'] as const),
  ringBuffer: object({
    sizeBytes: integer(4096, 1 << 30, 'bytes, a power of two'),
    maxQueuedBatches: integer(1, 1 << 16, 'batches waiting for the JS thread'),
    maxQueuedBytes: integer(1 << 16, 1 << 30, 'bytes of events waiting for the JS thread'),
  }),
  events: object({
    aggregationWindowMs: integer(0, 3_600_000, 'milliseconds over which repeats of an event fold into one log record; 0 turns folding off'),
    maxAggregatedKeys: integer(1, 1 << 20, 'distinct events tracked per window'),
  }),
  probes: probesSchema(),
  exporters: object({
    otlp: object({
      endpoint: httpUrl('http://otel-collector:4317'),
      protocol: oneOf(OTLP_PROTOCOLS),
      headers: stringMap(),
      exportIntervalMs: integer(100, 3_600_000, 'milliseconds'),
      exportTimeoutMs: integer(100, 600_000, 'milliseconds'),
      temporality: oneOf(['cumulative', 'delta'] as const),
      failureSummaryIntervalMs: integer(1000, 86_400_000, 'milliseconds between two summary lines while exports keep failing'),
    }),
    prometheus: object({
      enabled: boolean(),
      host: listenAddress(),
      port: integer(1, 65535, 'TCP port'),
    }),
    console: object({
      enabled: boolean(),
      intervalMs: integer(100, 3_600_000, 'milliseconds'),
    }),
  }),
  collection: object({
    cgroupGracePeriodMs: integer(0, 86_400_000, 'milliseconds a removed cgroup keeps its series'),
  }),
  shutdown: object({
    timeoutMs: integer(100, 600_000, 'milliseconds the final export may take after SIGTERM'),
  }),
  health: object({
    enabled: boolean(),
    host: listenAddress(),
    port: integer(1, 65535, 'TCP port'),
    maxIntervalsWithoutExport: integer(1, 1000, 'OTLP export intervals without a successful export before /readyz says not ready'),
  }),
  kubernetes: object({
    enabled: boolean(),
    kubeconfig: string({ expected: 'the path of a kubeconfig file' }),
    resolvePeers: boolean(),
    podLabels: stringList(string({ pattern: /^([a-z0-9.-]+\/)?[A-Za-z0-9._-]+$/, expected: 'a pod label key such as app.kubernetes.io/name' })),
    deletedPodGracePeriodMs: integer(0, 86_400_000, 'milliseconds a deleted pod stays resolvable'),
  }),
});

/** The validated configuration; optional fields are those with no default. */
export interface FlowtelConfig {
  nodeName: string;
  cgroupRoot: string;
  bpfObjectDir: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** maxQueuedBytes bounds the agent's memory under a flood: beyond it events wait in the kernel ring. */
  ringBuffer: { sizeBytes: number; maxQueuedBatches: number; maxQueuedBytes: number };
  /** Repeats of an event within a window become one summary log record (src/events/event-aggregator). */
  events: { aggregationWindowMs: number; maxAggregatedKeys: number };
  probes: ProbesConfig;
  exporters: {
    otlp: {
      endpoint?: string;
      /** gRPC (the default, port 4317), or OTLP/HTTP with protobuf or JSON bodies (port 4318). */
      protocol: OtlpProtocol;
      headers: Record<string, string>;
      exportIntervalMs: number;
      exportTimeoutMs: number;
      temporality: 'cumulative' | 'delta';
      /** While exports keep failing, one summary line per this interval (src/exporters/export-watch). */
      failureSummaryIntervalMs: number;
    };
    /** enabled: undefined means "on when no OTLP endpoint is set". */
    prometheus: { enabled?: boolean; host: string; port: number };
    console: { enabled?: boolean; intervalMs: number };
  };
  collection: { cgroupGracePeriodMs: number };
  /** After SIGTERM: one last export within timeoutMs, then exit; the Helm chart's grace period is above it. */
  shutdown: { timeoutMs: number };
  /** /healthz (alive) and /readyz (probe groups loaded, exports succeeding) over HTTP. */
  health: { enabled: boolean; host: string; port: number; maxIntervalsWithoutExport: number };
  /** enabled: undefined means "on when in a cluster or a kubeconfig is given". */
  kubernetes: {
    enabled?: boolean;
    kubeconfig?: string;
    resolvePeers: boolean;
    podLabels: string[];
    deletedPodGracePeriodMs: number;
  };
}

export function defaultCgroupRoot(): string {
  for (const candidate of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    if (isCgroup2(candidate)) return candidate;
  }
  return '/sys/fs/cgroup';
}

export function isCgroup2(dir: string): boolean {
  try {
    return fs.statfsSync(dir).type === CGROUP2_SUPER_MAGIC;
  } catch {
    return false;
  }
}

export function defaultConfig(packageRoot: string): FlowtelConfig {
  return {
    // NODE_NAME (the chart sets it from the pod's spec.nodeName) is a validated environment layer.
    nodeName: os.hostname().toLowerCase(),
    cgroupRoot: defaultCgroupRoot(),
    bpfObjectDir: path.join(packageRoot, 'bpf', '.output'),
    logLevel: 'info',
    // 2 MiB: libbpf maps the data area twice, so it is 4 MiB of RSS; with back-pressure and folded repeats it absorbs
    // bursts of tens of thousands of events (docs/performance.md).
    ringBuffer: { sizeBytes: 1 << 21, maxQueuedBatches: 256, maxQueuedBytes: 8 << 20 },
    events: { aggregationWindowMs: 1000, maxAggregatedKeys: 10_000 },
    probes: probesDefaults(),
    exporters: {
      otlp: { protocol: 'grpc', headers: {}, exportIntervalMs: 60_000, exportTimeoutMs: 30_000, temporality: 'cumulative', failureSummaryIntervalMs: 60_000 },
      prometheus: { host: '0.0.0.0', port: 9464 },
      console: { intervalMs: 10_000 },
    },
    collection: { cgroupGracePeriodMs: 300_000 },
    shutdown: { timeoutMs: 5000 },
    health: { enabled: true, host: '0.0.0.0', port: 8099, maxIntervalsWithoutExport: 3 },
    kubernetes: { resolvePeers: true, podLabels: [], deletedPodGracePeriodMs: 60_000 },
  };
}

/** Command-line flags that set a config field, flag name → dotted field. */
export const CONFIG_FLAGS: Record<string, string> = {
  '--node-name': 'nodeName',
  '--cgroup-root': 'cgroupRoot',
  '--bpf-dir': 'bpfObjectDir',
  '--log-level': 'logLevel',
  '--otlp-endpoint': 'exporters.otlp.endpoint',
  '--otlp-protocol': 'exporters.otlp.protocol',
  '--export-interval-ms': 'exporters.otlp.exportIntervalMs',
  '--temporality': 'exporters.otlp.temporality',
  '--prometheus-port': 'exporters.prometheus.port',
  '--prometheus-host': 'exporters.prometheus.host',
  '--console': 'exporters.console.enabled',
  '--prometheus': 'exporters.prometheus.enabled',
  '--kubeconfig': 'kubernetes.kubeconfig',
  '--health-port': 'health.port',
  '--cgroup-grace-period-ms': 'collection.cgroupGracePeriodMs',
  '--shutdown-timeout-ms': 'shutdown.timeoutMs',
};

/** NODE_NAME and the standard OpenTelemetry variables Flowtel maps onto its config (the exporters read the rest themselves). */
const OTEL_ENV: Record<string, string> = {
  NODE_NAME: 'nodeName',
  OTEL_EXPORTER_OTLP_ENDPOINT: 'exporters.otlp.endpoint',
  OTEL_EXPORTER_OTLP_PROTOCOL: 'exporters.otlp.protocol',
  OTEL_METRIC_EXPORT_INTERVAL: 'exporters.otlp.exportIntervalMs',
  OTEL_METRIC_EXPORT_TIMEOUT: 'exporters.otlp.exportTimeoutMs',
  OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'exporters.otlp.temporality',
};

function fromText(entries: Array<[string, string, string]>): DeepPartial<FlowtelConfig> {
  const out: Record<string, unknown> = {};
  for (const [field, text, source] of entries) {
    const spec = specAt(configSchema, field);
    if (!spec.parseText) throw new Error(`internal: ${field} cannot be set from text`);
    setAt(out, field, spec.parseText(text, field, source));
  }
  return out as DeepPartial<FlowtelConfig>;
}

export function configFromEnv(env: NodeJS.ProcessEnv): DeepPartial<FlowtelConfig> {
  const entries: Array<[string, string, string]> = [];
  for (const [name, field] of Object.entries(OTEL_ENV)) {
    let text = env[name];
    if (text === undefined || text === '') continue;
    // The spec spells temporality in upper case; accept both, and "lowmemory" as delta.
    if (name === 'OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE') {
      text = text.toLowerCase() === 'lowmemory' ? 'delta' : text.toLowerCase();
    }
    entries.push([field, text, `environment variable ${name}`]);
  }
  return fromText(entries);
}

/** The flag that loads only the probe groups it names (each group's `enabled`, in one flag). */
export const PROBE_GROUPS_FLAG = '--probe-groups';

export function configFromFlags(flags: Array<[string, string]>): DeepPartial<FlowtelConfig> {
  const partial = fromText(flags.filter(([flag]) => flag !== PROBE_GROUPS_FLAG).map(([flag, text]) => [CONFIG_FLAGS[flag], text, `flag ${flag}`]));
  const selections = flags.filter(([flag]) => flag === PROBE_GROUPS_FLAG);
  if (selections.length === 0) return partial;
  // The last one wins, as for any other flag; its groups are on, every other group off.
  const chosen = probeGroupSelection(selections[selections.length - 1][1]);
  const probes: Record<string, { enabled: boolean }> = {};
  for (const group of PROBE_GROUPS) probes[group.configKey] = { enabled: chosen.has(group.name) };
  return deepMerge<DeepPartial<FlowtelConfig>>(partial, { probes } as DeepPartial<FlowtelConfig>);
}

function probeGroupSelection(text: string): Set<string> {
  const known = PROBE_GROUPS.map((g) => g.name);
  const expected = `a comma-separated list of probe groups (${known.join(', ')})`;
  const names = text
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  if (names.length === 0) throw new ConfigError(PROBE_GROUPS_FLAG, text, expected, `flag ${PROBE_GROUPS_FLAG}`);
  for (const name of names) if (!known.includes(name)) throw new ConfigError(PROBE_GROUPS_FLAG, name, expected, `flag ${PROBE_GROUPS_FLAG}`);
  return new Set(names);
}

export function configFromFile(file: string): DeepPartial<FlowtelConfig> {
  const source = `config file ${file}`;
  const text = readInputFile(file, {
    field: '--config',
    source: 'flag --config',
    what: 'a readable YAML or JSON config file',
    maxBytes: MAX_CONFIG_FILE_BYTES,
  }).toString('utf8');
  let raw: unknown;
  try {
    // Aliases are bounded by the parser (maxAliasCount), so an anchor bomb is refused rather than expanded.
    // 'error': errors throw, warnings (unknown tags) are not printed to stderr.
    raw = YAML.parse(text, { logLevel: 'error' });
  } catch (err) {
    throw new ConfigError('(file)', file, `valid YAML or JSON: ${clip((err as Error).message.split('\n')[0], 200)}`, source);
  }
  if (raw === null || raw === undefined) return {};
  return configSchema.parse(raw, '', source) as DeepPartial<FlowtelConfig>;
}

/** Merges the layers and checks what only the whole config can tell (paths on this machine). */
export function resolveConfig(
  defaults: FlowtelConfig,
  layers: Array<{ partial: DeepPartial<FlowtelConfig>; source: string }>,
  /** false: leave the node's paths (cgroup root, BPF objects) unchecked, for `flowtel doctor` to report them. */
  checkNodePaths = true,
): FlowtelConfig {
  const config = deepMerge<FlowtelConfig>(defaults, ...layers.map((l) => l.partial));
  const sourceOf = (field: string): string => {
    for (let i = layers.length - 1; i >= 0; i--) {
      let node: unknown = layers[i].partial;
      for (const part of field.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
      if (node !== undefined) return layers[i].source;
    }
    return 'the default';
  };
  if (checkNodePaths && !isCgroup2(config.cgroupRoot)) {
    throw new ConfigError('cgroupRoot', config.cgroupRoot, 'a mounted cgroup v2 file system (for example /sys/fs/cgroup)', sourceOf('cgroupRoot'));
  }
  if (checkNodePaths && !fs.existsSync(config.bpfObjectDir)) {
    throw new ConfigError(
      'bpfObjectDir',
      config.bpfObjectDir,
      'an existing directory with the built *.bpf.o files (npm run build:bpf)',
      sourceOf('bpfObjectDir'),
    );
  }
  if (sourceOf('nodeName') === 'the default') {
    // A host name may carry characters a Kubernetes node name cannot; say so rather than export it.
    configSchema.shape.nodeName.parse(config.nodeName, 'nodeName', "this host's name (set NODE_NAME or --node-name)");
  }
  const ring = config.ringBuffer.sizeBytes;
  if ((ring & (ring - 1)) !== 0) {
    throw new ConfigError('ringBuffer.sizeBytes', ring, 'a power of two', sourceOf('ringBuffer.sizeBytes'));
  }
  return config;
}
