/**
 * The probe-group registry is the one place that names groups: the config,
 * the chart's schema, docs/telemetry.md and docs/kernels.md must agree with
 * it, and no other source file may name a group.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { configSchema } from '../../src/config/config';
import { probesChartSchema } from '../../src/config/chart-schema';
import type { JsonSchema, Spec } from '../../src/config/schema';
import { PROBE_GROUPS } from '../../src/probes/registry';
import { parseKernelTable, readKernelDoc } from '../support/kernel-table';

const REPO = path.resolve(__dirname, '..', '..', '..');
const CHART_SCHEMA = path.join(REPO, 'helm', 'flowtel', 'values.schema.json');

describe('probe-group registry', () => {
  it('names each group once, kebab-case, with a camelCase config key, a folder of its own and hooks', () => {
    assert.equal(new Set(PROBE_GROUPS.map((g) => g.name)).size, PROBE_GROUPS.length);
    assert.equal(new Set(PROBE_GROUPS.map((g) => g.configKey)).size, PROBE_GROUPS.length);
    for (const g of PROBE_GROUPS) {
      assert.match(g.name, /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/, g.name);
      assert.match(g.configKey, /^[a-z][A-Za-z0-9]*$/, g.configKey);
      assert.ok(fs.statSync(path.join(REPO, 'src', 'probes', g.name)).isDirectory(), `src/probes/${g.name}/`);
      assert.ok(g.hooks.length > 0, `${g.name} declares no hook`);
      assert.ok(g.telemetry.metrics.length > 0, `${g.name} declares no metric`);
    }
  });

  it('is what the config schema and defaults are made of', () => {
    assert.deepEqual(
      Object.keys(configSchema.shape.probes.shape),
      PROBE_GROUPS.map((g) => g.configKey),
    );
    for (const g of PROBE_GROUPS) {
      // Defaults pass the group's own schema, and every key of the defaults has a spec.
      assert.deepEqual(g.configSchema.parse(g.defaults(), `probes.${g.configKey}`, 'test'), g.defaults());
      assert.deepEqual(Object.keys(g.defaults()).sort(), Object.keys(g.configSchema.shape).sort(), g.name);
    }
  });

  it('no file under src/ names a group but the registry, the group itself and src/semconv', () => {
    const offenders: string[] = [];
    for (const file of sourceFiles(path.join(REPO, 'src'))) {
      const rel = path.relative(REPO, file);
      if (rel === path.join('src', 'probes', 'registry.ts') || rel.startsWith(path.join('src', 'semconv') + path.sep)) continue;
      const lines = fs.readFileSync(file, 'utf8').split('\n');
      for (const g of PROBE_GROUPS) {
        if (rel.startsWith(path.join('src', 'probes', g.name) + path.sep)) continue;
        // A quoted name, a config key used as a property, or a hyphenated name anywhere (drops and flows are
        // also English words, so those two count only as code).
        const patterns = [
          new RegExp(`['"\`]${escape(g.name)}['"\`]`),
          new RegExp(`\\.${escape(g.configKey)}\\b`),
          new RegExp(`\\b${escape(g.configKey)}\\s*:`),
        ];
        if (g.name.includes('-')) patterns.push(new RegExp(`(?<![\\w-])${escape(g.name)}(?![\\w-])`));
        lines.forEach((line, i) => {
          if (patterns.some((p) => p.test(line))) offenders.push(`${rel}:${i + 1} names ${g.name}: ${line.trim()}`);
        });
      }
    }
    assert.deepEqual(offenders, []);
  });
});

describe('docs agree with the registry', () => {
  const telemetry = fs.readFileSync(path.join(REPO, 'docs', 'telemetry.md'), 'utf8');

  for (const g of PROBE_GROUPS) {
    it(`docs/telemetry.md describes each metric (with its unit) and log record of ${g.name}`, () => {
      const section = sectionOf(telemetry, `## Probe group \`${g.name}\``);
      assert.ok(section, `docs/telemetry.md has no "## Probe group \`${g.name}\`" section`);
      for (const metric of g.telemetry.metrics) {
        const row = section.split('\n').find((l) => l.startsWith(`| \`${metric.name}\` |`));
        assert.ok(row, `no table row for ${metric.name} in the ${g.name} section`);
        assert.ok(row.includes(`| \`${metric.unit}\` |`), `${metric.name}: the row does not give the unit ${metric.unit}: ${row}`);
      }
      for (const event of g.telemetry.events) assert.ok(section.includes(`Log record \`${event}\``), `no "Log record \`${event}\`" in the ${g.name} section`);
    });
  }

  it('docs/kernels.md has a row for every group on every kernel of the matrix, and no other', () => {
    const columns = parseKernelTable(readKernelDoc());
    assert.ok(columns.size >= 4, 'the matrix has at least 4 kernels');
    for (const [series, column] of columns)
      assert.deepEqual(
        [...column.groups.keys()],
        PROBE_GROUPS.map((g) => g.name),
        series,
      );
  });
});

describe("the chart's values.schema.json agrees with the agent's config schema", () => {
  const chart = JSON.parse(fs.readFileSync(CHART_SCHEMA, 'utf8')) as JsonSchema & { properties: { config: JsonSchema } };

  it("has the probe groups' part the build writes from the registry (npm run build)", () => {
    assert.deepEqual((chart.properties.config.properties as Record<string, unknown>).probes, probesChartSchema(PROBE_GROUPS));
  });

  it('allows, for every config value it offers, what the agent allows: type, enum, range, pattern', () => {
    const disagreements: string[] = [];
    const keywords = ['type', 'enum', 'minimum', 'maximum', 'pattern'] as const;
    const compare = (spec: Spec<unknown> & { shape?: Record<string, Spec<unknown>> }, node: JsonSchema, field: string): void => {
      if (spec.shape) {
        const properties = (node.properties ?? {}) as Record<string, JsonSchema>;
        for (const [key, child] of Object.entries(properties)) {
          const childSpec = spec.shape[key];
          if (!childSpec) disagreements.push(`${field}.${key}: the chart offers a key the agent does not know`);
          else compare(childSpec, child, field ? `${field}.${key}` : key);
        }
        return;
      }
      const json = spec.json;
      if (!json) return; // checked beyond what JSON Schema can say (URLs, addresses): the agent's validate has the last word
      for (const keyword of keywords) {
        if (json[keyword] !== undefined && JSON.stringify(json[keyword]) !== JSON.stringify(node[keyword])) {
          disagreements.push(`${field}: ${keyword} is ${JSON.stringify(node[keyword])} in the chart, ${JSON.stringify(json[keyword])} in the agent`);
        }
      }
      const items = json.items as JsonSchema | undefined;
      if (items) {
        for (const keyword of keywords) {
          const chartItems = (node.items ?? {}) as JsonSchema;
          if (items[keyword] !== undefined && JSON.stringify(items[keyword]) !== JSON.stringify(chartItems[keyword])) {
            disagreements.push(`${field}[]: ${keyword} is ${JSON.stringify(chartItems[keyword])} in the chart, ${JSON.stringify(items[keyword])} in the agent`);
          }
        }
      }
    };
    compare(configSchema, chart.properties.config, '');
    assert.deepEqual(disagreements, []);
  });
});

function sectionOf(markdown: string, heading: string): string | undefined {
  const start = markdown.indexOf(`${heading}\n`);
  if (start < 0) return undefined;
  const next = markdown.indexOf('\n## ', start + heading.length);
  return markdown.slice(start, next < 0 ? undefined : next);
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
}
