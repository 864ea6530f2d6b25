/**
 * The OTLP contract against a real OpenTelemetry Collector (built from the
 * collector's Go modules by scripts/build-otelcol.sh): the agent exports to
 * the collector's OTLP receiver over gRPC, OTLP/HTTP with protobuf and with
 * JSON; the collector's OTLP exporter forwards to our receiver, which the
 * test reads. What arrives must be what docs/telemetry.md says: each
 * metric's type, unit and temporality, histograms with their buckets, log
 * records with their event names and attributes. The shipped gateway config
 * and the one the Helm chart renders pass `otelcol validate`, and the shipped
 * one starts.
 *
 * Host only (test/collector): the collector is the subject, not the kernel.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import YAML from 'yaml';
import { OtlpReceiver, type ReceivedDataPoint } from '../../src/testbed/otlp-receiver';
import { TestNode } from '../../src/testbed/test-node';
import { AgentProcess, waitFor } from '../support/agent-process';
import { cgroupRoot, requireKernel } from '../support/kernel';
import { Collector, freePort, requireOtelcol, validateConfig } from '../support/otelcol';
import { tempDir } from '../support/tmp';
import { CHART, helm } from '../helm/helm';
import { dropPercent, iperf, netClient } from '../support/traffic';

const ROOT = path.resolve(__dirname, '..', '..', '..');

interface DocumentedMetric {
  kind: 'sum' | 'gauge' | 'histogram';
  monotonic?: boolean;
  unit: string;
}

/** The metric tables of docs/telemetry.md: name → what its instrument exports as. Rows naming several metrics are left out. */
function documentedMetrics(): Map<string, DocumentedMetric> {
  const out = new Map<string, DocumentedMetric>();
  for (const line of fs.readFileSync(path.join(ROOT, 'docs', 'telemetry.md'), 'utf8').split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    const name = /^`([a-z0-9_.]+)`$/.exec(cells[1] ?? '')?.[1];
    const instrument = cells[2] ?? '';
    const unit = /^`([^`]+)`$/.exec(cells[3] ?? '')?.[1];
    if (!name || !unit) continue;
    const kind = /^UpDownCounter/.test(instrument)
      ? { kind: 'sum' as const, monotonic: false }
      : /^Counter/.test(instrument)
        ? { kind: 'sum' as const, monotonic: true }
        : /^Gauge/.test(instrument)
          ? { kind: 'gauge' as const }
          : /^Histogram/.test(instrument)
            ? { kind: 'histogram' as const }
            : undefined;
    if (kind) out.set(name, { ...kind, unit });
  }
  return out;
}

/** What each group's traffic below makes the agent export, through any protocol. */
const EXPECTED_METRICS = [
  'flowtel.tcp.retransmits',
  'flowtel.tcp.retransmit.events',
  'flowtel.tcp.resets',
  'flowtel.network.drops',
  'flowtel.tcp.connection.opens',
  'flowtel.tcp.connection.failures',
  'flowtel.tcp.rtt',
  'flowtel.tcp.handshake.duration',
  'k8s.pod.network.io',
  'flowtel.agent.events.received',
  'flowtel.agent.exports',
  'process.memory.usage',
];
const EXPECTED_EVENTS = ['flowtel.tcp.retransmit', 'flowtel.tcp.reset', 'flowtel.network.drop', 'flowtel.tcp.connection.failure'];

function collectorConfig(grpcPort: number, httpPort: number, receiver: OtlpReceiver): string {
  return YAML.stringify({
    receivers: { otlp: { protocols: { grpc: { endpoint: `127.0.0.1:${grpcPort}` }, http: { endpoint: `127.0.0.1:${httpPort}` } } } },
    exporters: { otlp: { endpoint: `127.0.0.1:${receiver.port}`, tls: { insecure: true } } },
    service: {
      // No listener of the collector's own: the test machine may run other collectors.
      telemetry: { metrics: { level: 'none' } },
      pipelines: { metrics: { receivers: ['otlp'], exporters: ['otlp'] }, logs: { receivers: ['otlp'], exporters: ['otlp'] } },
    },
  });
}

describe('a real OpenTelemetry Collector between the agent and the backend', function () {
  this.timeout(240_000);

  before(function () {
    requireKernel(this);
    requireOtelcol();
  });

  it('the shipped otel-collector-config.yaml and the gateway config the chart renders pass otelcol validate', () => {
    const shipped = validateConfig(path.join(ROOT, 'otel-collector-config.yaml'));
    assert.equal(shipped.code, 0, shipped.output);
    const rendered = helm(['template', 'flowtel', CHART, '--set', 'collector.enabled=true']);
    assert.equal(rendered.code, 0, rendered.stderr);
    const configMaps = YAML.parseAllDocuments(rendered.stdout)
      .map((d) => d.toJS() as { kind?: string; data?: Record<string, string> } | null)
      .filter((d) => d?.kind === 'ConfigMap' && d.data && Object.values(d.data).some((v) => v.includes('receivers:')));
    assert.equal(configMaps.length, 1, 'one ConfigMap holds the gateway config');
    const [text] = Object.values(configMaps[0]!.data!).filter((v) => v.includes('receivers:'));
    const file = path.join(tempDir('chart-collector'), 'config.yaml');
    fs.writeFileSync(file, text);
    const chart = validateConfig(file);
    assert.equal(chart.code, 0, chart.output);
  });

  it('the shipped config starts, answers its health check, and stops on SIGTERM', async () => {
    const text = fs.readFileSync(path.join(ROOT, 'otel-collector-config.yaml'), 'utf8');
    // The same file with its listeners on free loopback ports: the fixed ones may be taken on a test machine.
    const [grpc, httpPort, health] = [await freePort(), await freePort(), await freePort()];
    const local = text
      .replace('0.0.0.0:4317', `127.0.0.1:${grpc}`)
      .replace('0.0.0.0:4318', `127.0.0.1:${httpPort}`)
      .replace('0.0.0.0:13133', `127.0.0.1:${health}`);
    assert.notEqual(local, text);
    const collector = await Collector.start(local);
    try {
      const status = await new Promise<number>((resolve, reject) =>
        http.get(`http://127.0.0.1:${health}/`, (res) => resolve(res.statusCode ?? 0)).on('error', reject),
      );
      assert.equal(status, 200);
    } finally {
      assert.equal(await collector.stop(), 0, collector.output);
    }
  });

  for (const protocol of ['grpc', 'http/protobuf', 'http/json'] as const) {
    it(`over ${protocol}: every metric and log record arrives as docs/telemetry.md describes it`, async () => {
      const receiver = await OtlpReceiver.start();
      const [grpcPort, httpPort] = [await freePort(), await freePort()];
      let collector: Collector | undefined;
      let agent: AgentProcess | undefined;
      const node = await TestNode.create({ cgroupRoot: cgroupRoot(), pods: [{ name: 'a' }, { name: 'b' }] });
      try {
        collector = await Collector.start(collectorConfig(grpcPort, httpPort, receiver));
        const endpoint = protocol === 'grpc' ? `http://127.0.0.1:${grpcPort}` : `http://127.0.0.1:${httpPort}`;
        agent = AgentProcess.start(['--cgroup-root', cgroupRoot(), '--node-name', 'collector-test', '--prometheus', 'false'], {
          OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
          OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
          OTEL_METRIC_EXPORT_INTERVAL: '1000',
        });
        await agent.running();
        const b = node.pod('b');
        // Retransmits, RTT, flows and handshakes; a refused connect (reset and connection failure); a UDP
        // datagram to a closed port (a drop, NO_SOCKET).
        await dropPercent(node, 'a', 'b', 3);
        await iperf(node, 'a', 'b', 2);
        await netClient(node, 'a', ['connect', b.ip, 7090, 2]);
        await netClient(node, 'a', ['udp', b.ip, 7091, 5]);

        const documented = documentedMetrics();
        const latest = new Map<string, ReceivedDataPoint>();
        const a = node.pod('a');
        const retransmitOfA = () => receiver.logRecords.find((r) => r.eventName === 'flowtel.tcp.retransmit' && r.attributes['k8s.pod.uid'] === a.uid);
        const noSocketDrop = () =>
          receiver.logRecords.find((r) => r.eventName === 'flowtel.network.drop' && r.attributes['flowtel.drop.reason'] === 'NO_SOCKET');
        // The records asserted below too: a drop of another reason (the nft rule's) may arrive before the NO_SOCKET one.
        await waitFor(
          'every expected metric and event through the collector',
          () => {
            for (const e of receiver.metricExports) for (const p of e.points) latest.set(p.metric, p);
            const events = new Set(receiver.logRecords.map((r) => r.eventName));
            const all = EXPECTED_METRICS.every((m) => latest.has(m)) && EXPECTED_EVENTS.every((e) => events.has(e));
            return all && retransmitOfA() && noSocketDrop() ? true : undefined;
          },
          60_000,
        ).catch((err: Error) => {
          const events = new Set(receiver.logRecords.map((r) => r.eventName));
          throw new Error(
            `${err.message}; missing metrics: ${EXPECTED_METRICS.filter((m) => !latest.has(m)).join(', ') || 'none'}; ` +
              `missing events: ${EXPECTED_EVENTS.filter((e) => !events.has(e)).join(', ') || 'none'}; ` +
              `a retransmit record of pod A: ${retransmitOfA() ? 'yes' : 'no'}; a NO_SOCKET drop record: ${noSocketDrop() ? 'yes' : 'no'}\n${agent?.stderr ?? ''}`,
          );
        });

        for (const name of EXPECTED_METRICS) assert.ok(documented.has(name), `${name} is exported but not in docs/telemetry.md`);
        let checked = 0;
        for (const [name, point] of latest) {
          const doc = documented.get(name);
          if (!doc) continue;
          checked++;
          assert.equal(point.kind, doc.kind, `${name}: type`);
          assert.equal(point.unit, doc.unit, `${name}: unit`);
          if (doc.kind === 'sum') assert.equal(point.monotonic, doc.monotonic, `${name}: monotonic`);
          if (doc.kind !== 'gauge') assert.equal(point.temporality, 'cumulative', `${name}: temporality`);
          if (doc.kind === 'histogram') {
            assert.equal(point.bucketCounts?.length, (point.explicitBounds?.length ?? 0) + 1, `${name}: one bucket more than bounds`);
            assert.equal(
              point.bucketCounts?.reduce((s, n) => s + n, 0),
              point.count,
              `${name}: buckets add up to the count`,
            );
          }
          assert.equal(point.resource['service.name'], 'flowtel', `${name}: resource`);
          assert.equal(point.resource['k8s.node.name'], 'collector-test', `${name}: resource`);
        }
        const retransmit = retransmitOfA();
        assert.ok(retransmit, 'a retransmit record of pod A');
        assert.equal(retransmit.severityText, 'WARN');
        assert.equal(retransmit.attributes['network.peer.address'], b.ip);
        assert.equal(retransmit.attributes['network.transport'], 'tcp');
        assert.ok(Number(retransmit.attributes['flowtel.tcp.segments']) >= 1);
        const drop = noSocketDrop();
        assert.ok(drop, 'a NO_SOCKET drop record');
        console.log(`      ${protocol}: ${checked} documented metrics checked, ${receiver.logRecords.length} log records`);
      } finally {
        await agent?.stop();
        await collector?.stop();
        await receiver.stop();
        await node.destroy();
      }
    });
  }
});
