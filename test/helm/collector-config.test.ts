/**
 * otel-collector-config.yaml (the gateway's config, at the repository root and
 * in the chart): it parses, its pipelines wire only declared components, every
 * declared component is used, and each backend is explained.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML, { isMap, isScalar, type Pair } from 'yaml';
import { CHART, REPO, find, podSpec, render } from './helm';

const FILE = path.join(REPO, 'otel-collector-config.yaml');

interface Pipeline {
  receivers?: string[];
  processors?: string[];
  exporters?: string[];
}
interface CollectorConfig {
  extensions?: Record<string, unknown>;
  receivers?: Record<string, any>;
  processors?: Record<string, any>;
  exporters?: Record<string, any>;
  connectors?: Record<string, unknown>;
  service: { extensions?: string[]; pipelines: Record<string, Pipeline> };
}

const KINDS = ['receivers', 'processors', 'exporters'] as const;

function load(): { text: string; config: CollectorConfig; doc: YAML.Document } {
  const text = fs.readFileSync(FILE, 'utf8');
  const doc = YAML.parseDocument(text);
  assert.deepEqual(doc.errors, [], 'the file parses as YAML');
  return { text, config: doc.toJS() as CollectorConfig, doc };
}

/** Component type: the part before the slash ("otlphttp/mimir" -> "otlphttp"). */
const typeOf = (id: string) => id.split('/')[0];

describe('otel-collector-config.yaml', () => {
  it('has only collector sections and the three signal pipelines', () => {
    const { config } = load();
    for (const key of Object.keys(config)) {
      assert.ok(['extensions', 'receivers', 'processors', 'exporters', 'connectors', 'service'].includes(key), `unknown top-level section ${key}`);
    }
    assert.deepEqual(Object.keys(config.service.pipelines).sort(), ['logs', 'metrics', 'traces']);
  });

  it('every pipeline wires only declared receivers, processors and exporters, and every declared one is used', () => {
    const { config } = load();
    const used: Record<string, Set<string>> = { receivers: new Set(), processors: new Set(), exporters: new Set() };
    for (const [name, pipeline] of Object.entries(config.service.pipelines)) {
      assert.ok(pipeline.receivers?.length, `pipeline ${name} has receivers`);
      assert.ok(pipeline.exporters?.length, `pipeline ${name} has exporters`);
      for (const kind of KINDS) {
        const ids = pipeline[kind] ?? [];
        assert.equal(new Set(ids).size, ids.length, `pipeline ${name} lists a ${kind} entry twice`);
        for (const id of ids) {
          const declared = config[kind] ?? {};
          const connector = kind !== 'processors' && config.connectors && id in config.connectors;
          assert.ok(id in declared || connector, `pipeline ${name} uses ${kind} ${id}, which is not declared`);
          used[kind].add(id);
        }
      }
    }
    for (const kind of KINDS) {
      for (const id of Object.keys(config[kind] ?? {})) assert.ok(used[kind].has(id), `${kind} ${id} is declared but no pipeline uses it`);
    }
    const extensions = Object.keys(config.extensions ?? {}).sort();
    assert.deepEqual([...(config.service.extensions ?? [])].sort(), extensions, 'declared extensions = service.extensions');
  });

  it('OTLP in (gRPC and HTTP, on all addresses); memory_limiter first and batch last in every pipeline', () => {
    const { config } = load();
    const otlp = config.receivers?.otlp;
    assert.match(otlp?.protocols?.grpc?.endpoint ?? '', /^0\.0\.0\.0:4317$/);
    assert.match(otlp?.protocols?.http?.endpoint ?? '', /^0\.0\.0\.0:4318$/);
    for (const [name, pipeline] of Object.entries(config.service.pipelines)) {
      const processors = pipeline.processors ?? [];
      assert.equal(typeOf(processors[0] ?? ''), 'memory_limiter', `pipeline ${name}: memory_limiter first`);
      assert.equal(typeOf(processors[processors.length - 1] ?? ''), 'batch', `pipeline ${name}: batch last`);
    }
  });

  it('exports metrics to Mimir, logs to Loki (OTLP), traces to Tempo (OTLP), and everything to debug', () => {
    const { config } = load();
    const exporters = (signal: string) => config.service.pipelines[signal].exporters ?? [];
    const metricsTo = exporters('metrics').find((id) => /mimir/.test(id));
    assert.ok(metricsTo && ['otlphttp', 'prometheusremotewrite'].includes(typeOf(metricsTo)), `metrics to Mimir: ${exporters('metrics')}`);
    const logsTo = exporters('logs').find((id) => /loki/.test(id));
    assert.ok(logsTo && typeOf(logsTo) === 'otlphttp', `logs to Loki's OTLP endpoint: ${exporters('logs')}`);
    assert.match(config.exporters?.[logsTo].endpoint, /\/otlp\}?$/);
    const tracesTo = exporters('traces').find((id) => /tempo/.test(id));
    assert.ok(tracesTo && ['otlp', 'otlphttp'].includes(typeOf(tracesTo)), `traces to Tempo over OTLP: ${exporters('traces')}`);
    for (const signal of ['metrics', 'logs', 'traces']) assert.ok(exporters(signal).includes('debug'), `${signal} also to debug`);
  });

  it('has a comment for each backend exporter', () => {
    const { doc } = load();
    const exporters = doc.get('exporters', true);
    assert.ok(isMap(exporters));
    (exporters.items as Array<Pair<unknown, unknown>>).forEach((pair, i) => {
      const key = pair.key;
      assert.ok(isScalar(key));
      // The comment above a map's first key belongs to the map itself.
      const comment = (key.commentBefore ?? (i === 0 ? exporters.commentBefore : '') ?? '').trim();
      assert.ok(comment.length > 20, `exporter ${String(key.value)} has a comment explaining it`);
    });
  });

  it('runs anywhere: every ${env:...} has a default, and the chart sets only variables the file reads', () => {
    const { text } = load();
    const references = [...text.matchAll(/\$\{env:([A-Z0-9_]+)(:-[^}]*)?\}/g)];
    assert.ok(references.length > 0);
    for (const [whole, , fallback] of references) assert.ok(fallback, `${whole} has a default`);
    const read = new Set(references.map((m) => m[1]));
    const manifests = render({ collector: { enabled: true } });
    const collector = podSpec(find(manifests, 'Deployment', 'flowtel-collector')).containers[0];
    for (const env of collector.env ?? []) assert.ok(read.has(env.name), `the chart sets ${env.name}, which the file does not read`);
  });

  it('is the file the chart ships (helm/flowtel/files/otel-collector-config.yaml)', () => {
    const inChart = path.join(CHART, 'files', 'otel-collector-config.yaml');
    assert.equal(fs.readFileSync(inChart, 'utf8'), fs.readFileSync(FILE, 'utf8'));
  });
});
