import assert from 'node:assert/strict';
import path from 'node:path';
import { ValueType, type Attributes } from '@opentelemetry/api';
import { ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  type DataPoint,
  type GaugeMetricData,
  type Histogram,
  type HistogramMetricData,
  type MetricData,
  type ResourceMetrics,
  type SumMetricData,
} from '@opentelemetry/sdk-metrics';
import protobuf from 'protobufjs';
import { ATTRIBUTE_PARTS } from '../../src/exporters/otlp/attributes';
import { MetricsSerializer } from '../../src/exporters/otlp/metric-exporter';
import { MetricsRequestEncoder } from '../../src/exporters/otlp/metrics-request';

/*
 * The reference is the OpenTelemetry serializer the stock gRPC exporter uses:
 * for plain points our encoder must write the same bytes; for points with
 * attribute parts, the same message (attribute order aside).
 */
const reference = (request: ResourceMetrics): Buffer => Buffer.from(ProtobufMetricsSerializer.serializeRequest(request)!);
const ours = (request: ResourceMetrics, encoder = new MetricsRequestEncoder()): Buffer => Buffer.from(encoder.encode(request));

const NOW: [number, number] = [1_763_700_000, 123_456_789];
const START: [number, number] = [1_763_690_000, 999_999_999];

function point<T>(attributes: Attributes, value: T, startTime: [number, number] = START): DataPoint<T> {
  return { startTime, endTime: NOW, attributes, value };
}

function sum(
  name: string,
  valueType: ValueType,
  points: Array<DataPoint<number>>,
  monotonic = true,
  temporality = AggregationTemporality.CUMULATIVE,
): SumMetricData {
  return {
    descriptor: { name, description: `${name} description`, unit: 'By', valueType },
    aggregationTemporality: temporality,
    dataPointType: DataPointType.SUM,
    isMonotonic: monotonic,
    dataPoints: points,
  };
}

function gauge(name: string, points: Array<DataPoint<number>>): GaugeMetricData {
  return {
    descriptor: { name, description: '', unit: '', valueType: ValueType.DOUBLE },
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.GAUGE,
    dataPoints: points,
  };
}

function histogram(name: string, points: Array<DataPoint<Histogram>>): HistogramMetricData {
  return {
    descriptor: { name, description: 'latency', unit: 's', valueType: ValueType.DOUBLE },
    aggregationTemporality: AggregationTemporality.DELTA,
    dataPointType: DataPointType.HISTOGRAM,
    dataPoints: points,
  };
}

function request(metrics: MetricData[], resourceAttributes: Attributes = { 'service.name': 'flowtel' }): ResourceMetrics {
  return { resource: resourceFromAttributes(resourceAttributes), scopeMetrics: [{ scope: { name: 'flowtel', version: '0.1.0' }, metrics }] };
}

describe('OTLP metrics request encoder', () => {
  it('writes the same bytes as the OpenTelemetry serializer for every attribute and point kind', () => {
    const long = 'x'.repeat(200);
    const huge = 'long value '.repeat(2000);
    const attributes: Attributes = {
      str: 'value',
      unicode: 'pod-ü-日本-🚀',
      long,
      huge,
      yes: true,
      no: false,
      zero: 0,
      int: 42,
      big: 2 ** 40 + 7,
      negative: -5,
      'very-negative': -(2 ** 40),
      double: 1.5,
      'negative-double': -0.25,
      strings: ['a', 'b', long],
      numbers: [1, 2.5, -3],
      bools: [true, false],
      empty: [],
    };
    const rm = request(
      [
        sum('ints', ValueType.INT, [point(attributes, 0), point({ a: 'b' }, 2 ** 45 + 3), point({}, -7), point({ a: 'c' }, 12.9)]),
        sum('doubles', ValueType.DOUBLE, [point({ a: 'b' }, 0.1), point({ a: 'c' }, -2e300)], false, AggregationTemporality.DELTA),
        gauge('gauge', [point({ unit: 'none' }, 3.25), point({}, Number.MAX_SAFE_INTEGER)]),
        histogram('hist', [
          point(
            { direction: 'egress' },
            { buckets: { boundaries: [0.001, 0.01, 0.1], counts: [1, 2, 3, 2 ** 33] }, sum: 12.5, count: 2 ** 33 + 6, min: 0.0005, max: 0.2 },
          ),
          point({}, { buckets: { boundaries: [], counts: [] }, count: 0 }),
        ]),
        sum('empty', ValueType.INT, []),
      ],
      { 'service.name': 'flowtel', 'k8s.node.name': 'node-1', 'host.arch': 'amd64', nested: ['x'] },
    );
    assert.deepEqual(ours(rm), reference(rm));
  });

  it('writes lengths of every size (one to three bytes) the same way, with many points', () => {
    const points = Array.from({ length: 20_000 }, (_, i) =>
      point({ 'k8s.pod.name': `pod-${i}`, 'server.port': i, idx: i % 7 === 0 ? 'x'.repeat(i % 300) : i }, i * 1000, i % 2 ? START : NOW),
    );
    const rm = request([sum('flow', ValueType.INT, points)]);
    const bytes = ours(rm);
    assert.ok(bytes.length > 2 ** 21, `expected a request over 2 MiB (three-byte lengths), got ${bytes.length}`);
    assert.deepEqual(bytes, reference(rm));
  });

  it('encodes times as nanoseconds exactly, including ones beyond 2^53', () => {
    const times: Array<[number, number]> = [[0, 0], [1, 1], [9_007_199, 254_740_993], [2 ** 32 - 1, 999_999_999], NOW];
    for (const time of times) {
      const rm = request([gauge('t', [{ startTime: time, endTime: time, attributes: {}, value: 1 }])]);
      const decoded = decode(ours(rm)).resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0];
      const expected = BigInt(time[0]) * 1_000_000_000n + BigInt(time[1]);
      assert.equal(BigInt(decoded.timeUnixNano), expected, `time ${time}`);
      assert.equal(BigInt(decoded.startTimeUnixNano), expected, `time ${time}`);
    }
  });

  describe('points with attribute parts', () => {
    const pod = Object.freeze({ 'k8s.pod.name': 'web-0', 'k8s.namespace.name': 'shop', 'flowtel.attribution': 'pod' });
    const peerPod = Object.freeze({ 'flowtel.peer.kind': 'pod', 'flowtel.peer.k8s.pod.name': 'db-0' });
    const egress = Object.freeze({ 'network.io.direction': 'transmit' });
    const ingress = Object.freeze({ 'network.io.direction': 'receive' });

    function parted<T>(parts: Attributes[], value: T): DataPoint<T> {
      const p = point(Object.assign({}, ...parts) as Attributes, value);
      Object.defineProperty(p, ATTRIBUTE_PARTS, { value: () => parts });
      return p;
    }
    const peer = (i: number): Attributes => ({ 'network.peer.address': `10.0.${i >> 8}.${i & 255}`, 'server.port': 8000 + i, 'network.transport': 'tcp' });

    it('decodes to the same message as the merged attributes, sharing frozen parts between points and point kinds', () => {
      const encoder = new MetricsRequestEncoder();
      const points = Array.from({ length: 300 }, (_, i) => parted([pod, peer(i), peerPod, i % 2 ? egress : ingress], i));
      const hist = [parted([pod, peer(1), peerPod, egress], { buckets: { boundaries: [1, 2], counts: [1, 0, 4] }, sum: 9, count: 5 })];
      // Twice with one encoder: the second request is written from the cached encodings.
      for (let round = 0; round < 2; round++) {
        const rm = request([sum('bytes', ValueType.INT, points), histogram('rtt', hist)]);
        assert.deepEqual(normalized(ours(rm, encoder)), normalized(reference(rm)));
      }
    });

    it('lets a later part win when parts share a key, as the merged attributes do', () => {
      const renamed = Object.freeze({ 'k8s.pod.name': 'renamed' });
      const points = [parted([pod, { 'k8s.namespace.name': 'own' }, renamed], 1), parted([pod, renamed], 2), parted([renamed, pod], 3)];
      const rm = request([sum('bytes', ValueType.INT, points)]);
      const decoded = normalized(ours(rm));
      assert.deepEqual(decoded, normalized(reference(rm)));
      const names = decoded.resourceMetrics[0].scopeMetrics[0].metrics[0].sum.dataPoints.map((p: DecodedPoint) => p.attributes);
      assert.deepEqual(names[0], [
        { key: 'flowtel.attribution', value: { stringValue: 'pod' } },
        { key: 'k8s.namespace.name', value: { stringValue: 'own' } },
        { key: 'k8s.pod.name', value: { stringValue: 'renamed' } },
      ]);
      assert.equal(names[2].find((a: DecodedAttribute) => a.key === 'k8s.pod.name').value.stringValue, 'web-0');
    });

    it('stays correct with more distinct attribute names than the key bitmap has bits', () => {
      const many = Object.freeze(Object.fromEntries(Array.from({ length: 70 }, (_, i) => [`key.${i}`, i])));
      const points = [parted([many, { 'key.3': 'own' }], 1), parted([pod, peer(2), egress], 2), parted([many, pod], 3)];
      const rm = request([sum('bytes', ValueType.INT, points)]);
      assert.deepEqual(normalized(ours(rm)), normalized(reference(rm)));
    });
  });

  it('leaves exponential histograms to the OpenTelemetry serializer', () => {
    const exponential = {
      descriptor: { name: 'exp', description: '', unit: 's', valueType: ValueType.DOUBLE },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.EXPONENTIAL_HISTOGRAM,
      dataPoints: [
        point({ a: 1 }, { count: 2, sum: 3, scale: 1, zeroCount: 0, positive: { offset: 1, bucketCounts: [1, 1] }, negative: { offset: 0, bucketCounts: [] } }),
      ],
    } as MetricData;
    const rm = request([exponential, sum('s', ValueType.INT, [point({}, 1)])]);
    assert.equal(MetricsRequestEncoder.handles(rm), false);
    assert.deepEqual(Buffer.from(new MetricsSerializer().serializeRequest(rm)!), reference(rm));
    assert.throws(
      () => new MetricsRequestEncoder().encode(rm),
      /metric exp has data point type EXPONENTIAL_HISTOGRAM, expected a gauge, sum or explicit-bucket histogram/,
    );
  });
});

interface DecodedAttribute {
  key: string;
  value: Record<string, unknown>;
}
interface DecodedPoint {
  attributes: DecodedAttribute[];
}

let requestType: protobuf.Type | undefined;

function decode(bytes: Buffer): any {
  requestType ??= protobuf
    .loadSync(path.resolve(__dirname, '..', '..', '..', 'src', 'testbed', 'otlp-subset.proto'))
    .lookupType('flowtel.otlp.ExportMetricsServiceRequest');
  return requestType.toObject(requestType.decode(bytes), { longs: String, bytes: String, defaults: false });
}

/** The decoded request with each data point's attributes sorted by key (their order carries no meaning). */

function normalized(bytes: Buffer): any {
  const message = decode(bytes);
  for (const rm of message.resourceMetrics)
    for (const sm of rm.scopeMetrics)
      for (const metric of sm.metrics)
        for (const data of [metric.sum, metric.gauge, metric.histogram])
          for (const p of data?.dataPoints ?? [])
            p.attributes = [...(p.attributes ?? [])].sort((a: DecodedAttribute, b: DecodedAttribute) => a.key.localeCompare(b.key));
  return message;
}
