import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { configFromEnv, configFromFile, configFromFlags, defaultConfig, resolveConfig } from '../../src/config/config';
import { ConfigError } from '../../src/config/schema';
import { tempDir } from '../support/tmp';
import { PROBE_GROUPS } from '../../src/probes/registry';

function tempFile(name: string, text: string): string {
  const dir = tempDir('config');
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  assert.fail('expected a ConfigError');
}

describe('config validation', () => {
  it('accepts a complete file and keeps defaults for the rest', () => {
    const file = tempFile(
      'ok.yaml',
      `nodeName: worker-1
probes:
  tcpRetransmits:
    maxEventsPerSecondPerCpu: 5
exporters:
  otlp:
    endpoint: http://collector:4317
    headers: { x-tenant: shop }
`,
    );
    const partial = configFromFile(file);
    const defaults = defaultConfig('/tmp');
    const merged = { ...defaults, cgroupRoot: defaults.cgroupRoot };
    const config = resolveConfig({ ...merged, bpfObjectDir: os.tmpdir() }, [{ partial, source: 'file' }]);
    assert.equal(config.nodeName, 'worker-1');
    assert.equal(config.probes.tcpRetransmits.maxEventsPerSecondPerCpu, 5);
    assert.equal(config.probes.tcpRetransmits.enabled, true);
    assert.equal(config.exporters.otlp.endpoint, 'http://collector:4317');
    assert.deepEqual(config.exporters.otlp.headers, { 'x-tenant': 'shop' });
    assert.equal(config.exporters.otlp.exportIntervalMs, 60_000);
  });

  it('rejects an unknown key, naming it and the known keys', () => {
    const file = tempFile('unknown.yaml', 'probes:\n  tcpRetransmits:\n    enabeld: true\n');
    const err = configError(() => configFromFile(file));
    assert.equal(err.field, 'probes.tcpRetransmits.enabeld');
    assert.match(err.message, /probes\.tcpRetransmits\.enabeld = true \(boolean\)/);
    assert.match(err.message, /expected a known key \(one of: enabled, granularity, maxEventsPerSecondPerCpu, maxRows, idleFlowTimeoutMs\)/);
    assert.match(err.message, /unknown\.yaml/);
  });

  it('rejects a wrong type with the expected one', () => {
    const file = tempFile('type.yaml', 'exporters:\n  prometheus:\n    port: "abc"\n');
    const err = configError(() => configFromFile(file));
    assert.equal(err.field, 'exporters.prometheus.port');
    assert.match(err.message, /"abc".*expected an integer from 1 to 65535/);
  });

  it('rejects out-of-range numbers, bad enums, bad URLs and non-mapping sections', () => {
    assert.equal(configError(() => configFromFlags([['--prometheus-port', '70000']])).field, 'exporters.prometheus.port');
    assert.match(configError(() => configFromFlags([['--log-level', 'loud']])).message, /one of "debug", "info", "warn", "error"/);
    assert.match(configError(() => configFromFlags([['--otlp-endpoint', 'collector:4317']])).message, /http:\/\/ or https:\/\/ URL/);
    const file = tempFile('list.yaml', 'probes: [a, b]\n');
    assert.match(
      configError(() => configFromFile(file)).message,
      /probes = a list .*expected a mapping with keys tcpRetransmits, tcpResets, drops, tcpConnections, tcpRtt, flows/,
    );
  });

  it('names the flag or environment variable a bad value came from', () => {
    assert.match(configError(() => configFromFlags([['--export-interval-ms', 'soon']])).message, /from flag --export-interval-ms/);
    const err = configError(() => configFromEnv({ OTEL_METRIC_EXPORT_INTERVAL: 'soon' }));
    assert.match(err.message, /exporters\.otlp\.exportIntervalMs = "soon" \(from environment variable OTEL_METRIC_EXPORT_INTERVAL\)/);
  });

  it('maps the standard OTEL_* variables', () => {
    const partial = configFromEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4317',
      OTEL_METRIC_EXPORT_INTERVAL: '1000',
      OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'DELTA',
    });
    assert.deepEqual(partial, { exporters: { otlp: { endpoint: 'http://127.0.0.1:4317', exportIntervalMs: 1000, temporality: 'delta' } } });
  });

  it('lets flags override the file, and the file override the environment', () => {
    const defaults = { ...defaultConfig('/tmp'), bpfObjectDir: os.tmpdir() };
    const config = resolveConfig(defaults, [
      { partial: configFromEnv({ OTEL_METRIC_EXPORT_INTERVAL: '1000' }), source: 'env' },
      { partial: { exporters: { otlp: { exportIntervalMs: 2000 } } }, source: 'file' },
      { partial: configFromFlags([['--export-interval-ms', '3000']]), source: 'flags' },
    ]);
    assert.equal(config.exporters.otlp.exportIntervalMs, 3000);
  });

  it('--probe-groups loads only the groups it names, over the file, and names a group it does not know', () => {
    const defaults = defaultConfig(process.cwd());
    const file = tempFile('groups.yaml', 'probes:\n  flows:\n    enabled: true\n    granularity: flow\n');
    const config = resolveConfig(
      defaults,
      [
        { partial: configFromFile(file), source: 'file' },
        { partial: configFromFlags([['--probe-groups', 'tcp-rtt, drops']]), source: 'flags' },
      ],
      false,
    );
    const enabled = Object.entries(config.probes)
      .filter(([, group]) => group.enabled)
      .map(([key]) => key);
    assert.deepEqual(enabled.sort(), ['drops', 'tcpRtt']);
    assert.equal(config.probes.flows.granularity, 'flow', 'the file still sets what the flag does not');
    const unknown = configError(() => configFromFlags([['--probe-groups', 'tcp-rtt,http']]));
    assert.equal(unknown.field, '--probe-groups');
    const known = PROBE_GROUPS.map((g) => g.name).join(', ');
    assert.ok(unknown.message.includes(`"http" (from flag --probe-groups): expected a comma-separated list of probe groups (${known})`), unknown.message);
    assert.match(configError(() => configFromFlags([['--probe-groups', ' , ']])).message, /expected a comma-separated list of probe groups/);
  });

  it('rejects a cgroup root that is not a cgroup v2 mount, naming where it came from', () => {
    const defaults = { ...defaultConfig('/tmp'), bpfObjectDir: os.tmpdir() };
    const err = configError(() => resolveConfig(defaults, [{ partial: configFromFlags([['--cgroup-root', '/nonexistent/cgroup']]), source: 'flags' }]));
    assert.equal(err.field, 'cgroupRoot');
    assert.match(err.message, /"\/nonexistent\/cgroup" \(from flags\): expected a mounted cgroup v2 file system/);
    const tmp = configError(() => resolveConfig(defaults, [{ partial: { cgroupRoot: os.tmpdir() }, source: 'file x' }]));
    assert.equal(tmp.field, 'cgroupRoot');
  });

  it('rejects a ring buffer size that is not a power of two', () => {
    const defaults = { ...defaultConfig('/tmp'), bpfObjectDir: os.tmpdir() };
    const err = configError(() => resolveConfig(defaults, [{ partial: { ringBuffer: { sizeBytes: 10000 } }, source: 'file' }]));
    assert.equal(err.field, 'ringBuffer.sizeBytes');
  });

  it('reports unreadable files and invalid YAML', () => {
    assert.equal(configError(() => configFromFile('/nonexistent/flowtel.yaml')).field, '--config');
    const file = tempFile('bad.yaml', 'probes: {tcpRetransmits: [\n');
    assert.match(configError(() => configFromFile(file)).message, /expected valid YAML or JSON/);
  });
});
