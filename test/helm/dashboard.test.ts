/**
 * The Grafana dashboard the chart ships (helm/flowtel/dashboards): every query
 * parses as PromQL, names only metrics and attributes documented in
 * docs/telemetry.md, and works with both Prometheus namings of them: the
 * agent's own exporter (no unit suffixes: k8s_pod_network_io_total,
 * flowtel_tcp_rtt_bucket) and series that went through the OpenTelemetry
 * Collector to Mimir (unit suffixes: k8s_pod_network_io_bytes_total,
 * flowtel_tcp_rtt_seconds_bucket). On a kernel machine the agent-side names are
 * read from a running agent's /metrics.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import { AgentProcess, waitFor } from '../support/agent-process';
import { cgroupRoot, requireKernel } from '../support/kernel';
import { CHART, REPO } from './helm';
import { freePorts, httpGet } from './local-net';

interface DocumentedMetric {
  name: string;
  instrument: string;
  unit: string;
  /** The probe group whose section documents it (undefined: agent self-metrics). */
  group?: string;
}

/** Metric rows of docs/telemetry.md: | `name` | Instrument | `unit` | ... */
function documentedMetrics(): DocumentedMetric[] {
  const out: DocumentedMetric[] = [];
  let group: string | undefined;
  for (const line of fs.readFileSync(path.join(REPO, 'docs', 'telemetry.md'), 'utf8').split('\n')) {
    if (line.startsWith('## ')) group = /^## Probe group `([a-z-]+)`/.exec(line)?.[1];
    const cells = line.split('|').map((c) => c.trim());
    const name = /^`([a-z0-9_.]+)`/.exec(cells[1] ?? '')?.[1];
    const instrument = /(UpDownCounter|Counter|Histogram|Gauge)/.exec(cells[2] ?? '')?.[1];
    if (!name || !instrument || !name.includes('.')) continue;
    const unit = /^`([^`]+)`$/.exec(cells[3] ?? '')?.[1] ?? '';
    out.push({ name, instrument, unit, group });
  }
  return out;
}

/** Every attribute key the docs name, as a Prometheus label. */
function documentedLabels(): Set<string> {
  const text = fs.readFileSync(path.join(REPO, 'docs', 'telemetry.md'), 'utf8');
  const labels = new Set<string>();
  for (const m of text.matchAll(/`([a-z0-9_]+(?:\.[a-z0-9_]+)+)`/g)) labels.add(m[1].replace(/\./g, '_'));
  return labels;
}

const UNIT_WORDS: Record<string, string> = { By: 'bytes', s: 'seconds', ms: 'milliseconds' };

/**
 * The Prometheus names of one documented metric (the series name a query
 * selects: _total for counters, _bucket for histograms).
 * - agent: the OpenTelemetry JS Prometheus exporter (dots to underscores, _total, no unit suffix);
 * - backend: the collector's translation for Mimir OTLP / remote write (adds the unit word unless the name has it).
 */
function prometheusNames(metric: DocumentedMetric): { agent: string; backend: string } {
  const base = metric.name.replace(/\./g, '_');
  const word = UNIT_WORDS[metric.unit];
  const withUnit = word && !base.split('_').includes(word) ? `${base}_${word}` : base;
  const suffix = metric.instrument === 'Counter' ? '_total' : metric.instrument === 'Histogram' ? '_bucket' : '';
  return { agent: `${base}${suffix}`, backend: `${withUnit}${suffix}` };
}

interface Query {
  panel: string;
  expr: string;
  /** Plain metric names and __name__ regexes of its selectors. */
  names: string[];
  regexes: string[];
  labels: string[];
  groupings: string[][];
}

type Node = ReturnType<typeof parser.parse>['topNode'];

function parseQuery(panel: string, rawExpr: string): Query {
  // Grafana variables are not PromQL: give them values before parsing.
  const expr = rawExpr.replace(/\$__rate_interval/g, '5m').replace(/\$\w+/g, '.*');
  const tree = parser.parse(expr);
  const query: Query = { panel, expr: rawExpr, names: [], regexes: [], labels: [], groupings: [] };
  const text = (n: Node) => expr.slice(n.from, n.to);
  const errors: number[] = [];
  const visit = (node: Node): void => {
    if (node.type.isError) errors.push(node.from);
    if (node.name === 'VectorSelector') {
      const id = node.getChild('Identifier');
      if (id) query.names.push(text(id));
    }
    if (node.name === 'UnquotedLabelMatcher' || node.name === 'QuotedLabelMatcher') {
      const label = node.getChild('LabelName');
      const value = node.getChild('StringLiteral');
      if (label && text(label) === '__name__' && value) query.regexes.push(JSON.parse(text(value)) as string);
    }
    if (node.name === 'LabelName') query.labels.push(text(node));
    if (node.name === 'GroupingLabels') query.groupings.push(node.getChildren('LabelName').map(text));
    if (node.name === 'FunctionCall' && node.getChild('FunctionIdentifier') && text(node.getChild('FunctionIdentifier') as Node) === 'label_join') {
      const args = (node.getChild('FunctionCallBody') as Node).getChildren('StringLiteral').map((s) => JSON.parse(text(s)) as string);
      // label_join(v, dst, separator, src...): dst is a new label, the sources must be documented.
      query.labels.push(...args.slice(2));
    }
    for (let child = node.firstChild; child; child = child.nextSibling) visit(child);
  };
  visit(tree.topNode);
  assert.deepEqual(errors, [], `panel "${panel}": not PromQL at ${errors.join(', ')}: ${rawExpr}`);
  return query;
}

interface Panel {
  type: string;
  title: string;
  targets?: Array<{ expr: string }>;
}

function dashboard(): { uid: string; title: string; panels: Panel[]; templating: { list: Array<{ name: string; type: string; definition?: string }> } } {
  return JSON.parse(fs.readFileSync(path.join(CHART, 'dashboards', 'flowtel-network.json'), 'utf8'));
}

function queries(): Query[] {
  return dashboard().panels.flatMap((p) => (p.targets ?? []).map((t) => parseQuery(p.title, t.expr)));
}

/** The documented metric each selector of a query means; throws when one names nothing documented. */
function metricsOf(query: Query): DocumentedMetric[] {
  const documented = documentedMetrics();
  const out: DocumentedMetric[] = [];
  for (const name of query.names) {
    const metric = documented.find((m) => {
      const names = prometheusNames(m);
      return names.agent === name && names.backend === name;
    });
    assert.ok(metric, `panel "${query.panel}": ${name} is not a documented metric under the same name for the agent and the backend`);
    out.push(metric);
  }
  for (const regex of query.regexes) {
    const re = new RegExp(`^(?:${regex})$`);
    const matching = documented.filter((m) => re.test(prometheusNames(m).agent) || re.test(prometheusNames(m).backend));
    assert.ok(matching.length > 0, `panel "${query.panel}": __name__=~"${regex}" matches no documented metric`);
    for (const m of matching) {
      const names = prometheusNames(m);
      assert.ok(re.test(names.agent) && re.test(names.backend), `panel "${query.panel}": __name__=~"${regex}" must match both ${names.agent} and ${names.backend}`);
    }
    out.push(...matching);
  }
  return out;
}

describe('Grafana dashboard (helm/flowtel/dashboards/flowtel-network.json)', () => {
  it('is a dashboard with a Prometheus data-source variable and namespace/node filters', () => {
    const d = dashboard();
    assert.equal(d.uid, 'flowtel-network');
    const variables = new Map(d.templating.list.map((v) => [v.name, v]));
    assert.equal(variables.get('datasource')?.type, 'datasource');
    assert.ok(variables.get('namespace')?.definition?.includes('k8s_namespace_name'));
    assert.ok(variables.get('node')?.definition?.includes('k8s_node_name'));
  });

  it('every query parses and names only documented metrics and attributes, under both namings', () => {
    const labels = documentedLabels();
    const all = queries();
    assert.ok(all.length >= 8);
    for (const query of all) {
      assert.ok(metricsOf(query).length > 0, `panel "${query.panel}" selects a metric`);
      for (const label of query.labels) {
        assert.ok(labels.has(label) || ['le', 'workload', '__name__'].includes(label), `panel "${query.panel}": label ${label} is not a documented attribute`);
      }
    }
    // Variables query documented metrics too.
    for (const variable of dashboard().templating.list.filter((v) => v.definition)) {
      const selector = /label_values\((.*), (\w+)\)$/.exec(variable.definition ?? '');
      assert.ok(selector, variable.definition);
      assert.ok(labels.has(selector[2]), `variable ${variable.name}: ${selector[2]}`);
      metricsOf(parseQuery(`variable ${variable.name}`, selector[1]));
    }
  });

  it('has the panels the issue asks for, per namespace and workload', () => {
    const all = queries();
    const uses = (metric: string) => all.filter((q) => metricsOf(q).some((m) => m.name === metric));
    const perWorkload = (q: Query) => q.groupings.some((g) => g.includes('k8s_namespace_name') && g.includes('workload')) && q.labels.includes('k8s_deployment_name');
    const bytes = uses('k8s.pod.network.io');
    assert.ok(bytes.some(perWorkload), 'bytes per namespace and workload');
    const rtt = uses('flowtel.tcp.rtt');
    assert.ok(rtt.some((q) => q.expr.startsWith('histogram_quantile(') && perWorkload(q) && q.groupings.some((g) => g.includes('le'))), 'RTT quantiles');
    assert.ok(uses('flowtel.tcp.retransmits').some(perWorkload), 'retransmits');
    assert.ok(uses('flowtel.tcp.resets').some(perWorkload), 'resets');
    assert.ok(uses('flowtel.network.drops').some((q) => q.groupings.some((g) => g.includes('flowtel_drop_reason'))), 'drops by reason');
    assert.ok(uses('flowtel.tcp.connection.failures').some(perWorkload), 'failed connections');
  });

  describe('against a running agent', function () {
    this.timeout(120_000);
    let agent: AgentProcess | undefined;

    before(function () {
      requireKernel(this);
    });

    after(async () => {
      await agent?.stop();
    });

    it("the agent's /metrics uses the agent-side names the dashboard selects", async () => {
      const [metricsPort, healthPort, closedPort] = await freePorts(3);
      agent = AgentProcess.start([
        '--cgroup-root', cgroupRoot(),
        '--prometheus-host', '127.0.0.1',
        '--prometheus-port', String(metricsPort),
        '--health-port', String(healthPort),
        '--console', 'false',
      ]);
      await agent.running(60_000);
      // Some TCP: a connection that opens (RTT, bytes) and one refused (a failure).
      await connectAndClose();
      await new Promise<void>((resolve) => net.connect(closedPort, '127.0.0.1').on('error', () => resolve()).on('connect', () => resolve()));
      const exposition = await waitFor(
        'RTT and failed connections in /metrics',
        async () => {
          const text = await httpGet(`http://127.0.0.1:${metricsPort}/metrics`);
          return /^flowtel_tcp_rtt_bucket\{/m.test(text) && /^flowtel_tcp_connection_failures_total\{/m.test(text) ? text : undefined;
        },
        20_000,
      );
      // Names are what this checks; a group this kernel cannot load has no series (the e2e tests cover loading).
      const loaded = (/msg="flowtel running".* groups=(\S+)/.exec(agent.stderr)?.[1] ?? '').split(',');
      assert.ok(loaded.length >= 3, agent.stderr);
      const families = new Set([...exposition.matchAll(/^# TYPE (\S+) (\S+)/gm)].map((m) => (m[2] === 'histogram' ? `${m[1]}_bucket` : m[1])));
      for (const query of queries()) {
        for (const metric of metricsOf(query)) {
          const { agent: agentName } = prometheusNames(metric);
          if (metric.group && !loaded.includes(metric.group)) continue;
          assert.ok(families.has(agentName), `panel "${query.panel}": the agent exports ${agentName}; it has ${[...families].join(', ')}`);
        }
      }
    });
  });
});

async function connectAndClose(): Promise<void> {
  const server = net.createServer((socket) => socket.end('hello'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve, reject) => {
    const client = net.connect(port, '127.0.0.1');
    client.on('data', () => undefined);
    client.on('end', () => {
      client.end();
      resolve();
    });
    client.on('error', reject);
  });
  await new Promise((resolve) => server.close(resolve));
}
