import assert from 'node:assert/strict';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationTemporality, DataPointType, type PushMetricExporter, type ResourceMetrics, type SumMetricData } from '@opentelemetry/sdk-metrics';
import { ValueType } from '@opentelemetry/api';
import { ChunkingMetricExporter, splitResourceMetrics } from '../../src/exporters/chunking-exporter';
import { lazyMetric } from '../../src/exporters/lazy-points';

function sum(name: string, points: number): SumMetricData {
  return {
    descriptor: { name, description: '', unit: 'By', valueType: ValueType.INT },
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.SUM,
    isMonotonic: true,
    dataPoints: Array.from({ length: points }, (_, i) => ({ startTime: [0, 0], endTime: [1, 0], attributes: { i }, value: i })),
  };
}

const resource = resourceFromAttributes({ 'service.name': 'flowtel' });
const metrics = (): ResourceMetrics => ({
  resource,
  scopeMetrics: [{ scope: { name: 'flowtel' }, metrics: [sum('a', 12_000), sum('b', 3), sum('c', 0)] }],
});

describe('export chunking', () => {
  it('cuts data points into requests of at most N, keeping every point, descriptor and the resource', () => {
    const chunks = splitResourceMetrics(metrics(), 5000);
    const sizes = chunks.map((c) => c.scopeMetrics.flatMap((s) => s.metrics).reduce((n, m) => n + m.dataPoints.length, 0));
    assert.deepEqual(sizes, [5000, 5000, 2003]);
    const values = chunks.flatMap((c) =>
      c.scopeMetrics.flatMap((s) => s.metrics.filter((m) => m.descriptor.name === 'a').flatMap((m) => m.dataPoints.map((p) => p.value))),
    );
    assert.equal(values.length, 12_000);
    assert.equal(new Set(values).size, 12_000);
    assert.ok(chunks.every((c) => c.resource === resource));
    assert.ok(
      chunks.flatMap((c) => c.scopeMetrics.flatMap((s) => s.metrics)).some((m) => m.descriptor.name === 'c'),
      'empty metrics are kept',
    );
  });

  it('sends one request at a time and reports success only when every request succeeded', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    let calls = 0;
    const inner: PushMetricExporter = {
      export: (_m, cb) => {
        calls++;
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        setTimeout(() => {
          inFlight--;
          cb({ code: ExportResultCode.SUCCESS });
        }, 5);
      },
      forceFlush: async () => {},
      shutdown: async () => {},
      selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE,
    };
    const result = await new Promise<ExportResult>((resolve) => new ChunkingMetricExporter(inner, 5000).export(metrics(), resolve));
    assert.equal(calls, 3);
    assert.equal(maxInFlight, 1, 'the OTLP exporter refuses concurrent requests beyond its limit');
    assert.equal(result.code, ExportResultCode.SUCCESS);
  });

  it('stops at the first failed request and reports the failure', async () => {
    const results: ExportResultCode[] = [ExportResultCode.SUCCESS, ExportResultCode.FAILED, ExportResultCode.SUCCESS];
    let calls = 0;
    const inner: PushMetricExporter = {
      export: (_m, cb) => cb({ code: results[calls++] }),
      forceFlush: async () => {},
      shutdown: async () => {},
      selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE,
    };
    const result = await new Promise<ExportResult>((resolve) => new ChunkingMetricExporter(inner, 5000).export(metrics(), resolve));
    assert.equal(calls, 2);
    assert.equal(result.code, ExportResultCode.FAILED);
  });

  it('skips and counts a collection that arrives while the previous export is still being sent', async () => {
    const pending: Array<(r: ExportResult) => void> = [];
    const inner: PushMetricExporter = {
      export: (_m, cb) => pending.push(cb),
      forceFlush: async () => {},
      shutdown: async () => {},
      selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE,
    };
    const exporter = new ChunkingMetricExporter(inner, 5000);
    const first = new Promise<ExportResult>((resolve) => exporter.export(metrics(), resolve));
    const second = await new Promise<ExportResult>((resolve) => exporter.export(metrics(), resolve));
    assert.equal(second.code, ExportResultCode.FAILED);
    assert.match(String(second.error), /still being sent/);
    assert.equal(exporter.skipped, 1);
    while (pending.length) pending.shift()!({ code: ExportResultCode.SUCCESS });
    for (let i = 0; i < 3 && pending.length === 0; i++) await new Promise((r) => setImmediate(r));
    while (pending.length) pending.shift()!({ code: ExportResultCode.SUCCESS });
    assert.equal((await first).code, ExportResultCode.SUCCESS);
    // Once the first is done, the next export goes out.
    const third = new Promise<ExportResult>((resolve) => exporter.export(metrics(), resolve));
    while (pending.length === 0) await new Promise((r) => setImmediate(r));
    while (pending.length) pending.shift()!({ code: ExportResultCode.SUCCESS });
    assert.equal((await third).code, ExportResultCode.SUCCESS);
    assert.equal(exporter.skipped, 1);
  });

  it('makes the points of a lazy metric one request at a time, and all of them for other readers', async () => {
    let made = 0;
    const source = {
      length: 12_000,
      slice: (start: number, end: number) =>
        Array.from({ length: end - start }, (_, i) => {
          made++;
          return { startTime: [0, 0] as [number, number], endTime: [1, 0] as [number, number], attributes: { i: start + i }, value: start + i };
        }),
    };
    const { dataPoints: _unused, ...descriptorAndKind } = sum('lazy', 0);
    const lazy = lazyMetric<SumMetricData>(descriptorAndKind, source);
    assert.equal(made, 0, 'making the metric makes no point');
    const seen: number[] = [];
    const madeAtRequest: number[] = [];
    const inner: PushMetricExporter = {
      export: (m, cb) => {
        madeAtRequest.push(made);
        for (const metric of m.scopeMetrics.flatMap((s) => s.metrics)) for (const p of metric.dataPoints) seen.push(p.value as number);
        setImmediate(() => cb({ code: ExportResultCode.SUCCESS }));
      },
      forceFlush: async () => {},
      shutdown: async () => {},
      selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE,
    };
    const result = await new Promise<ExportResult>((resolve) =>
      new ChunkingMetricExporter(inner, 5000).export({ resource, scopeMetrics: [{ scope: { name: 'flowtel' }, metrics: [lazy, sum('b', 3)] }] }, resolve),
    );
    assert.equal(result.code, ExportResultCode.SUCCESS);
    assert.deepEqual(madeAtRequest, [5000, 10_000, 12_000], 'each request makes only its own points');
    assert.deepEqual(
      seen.slice(0, 12_000),
      Array.from({ length: 12_000 }, (_, i) => i),
      'every point once, in order',
    );
    assert.equal(seen.length, 12_003);
    assert.equal({ ...lazy }.dataPoints, undefined, 'spreading a lazy metric makes no point');
    assert.equal(lazy.dataPoints.length, 12_000, 'a reader of dataPoints (Prometheus, console) gets them all');
  });
});
