/**
 * Flow series as a busy node's agent exports them, for the OTLP benchmarks:
 * `flows` flows of `pods` pods, each to its own external peer address and
 * port, half of them in each direction, named by RowIdentity as at flow
 * granularity, published through a SeriesProducer (bytes and packets per
 * flow: two points each).
 */
import { hrTime } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SeriesProducer } from '../src/exporters/series-producer';
import type { EndpointRef, LocalEndpoint } from '../src/k8s/attribution';
import type { CounterRows, SeriesTotals } from '../src/tables/endpoint-counters';
import { counterSums } from '../src/tables/instruments';
import { RowIdentity } from '../src/tables/row-identity';
import type { AttributeParts } from '../src/tables/series';
import { METRIC_POD_NETWORK_IO, METRIC_POD_NETWORK_PACKETS } from '../src/semconv';

type Field = 'bytes' | 'packets';

export function flowRows(flows: number, podCount: number): CounterRows<Field> {
  const pods: LocalEndpoint[] = Array.from({ length: podCount }, (_, p) =>
    Object.freeze({
      key: `pod/uid-${p}`,
      keyId: `p${p}`,
      kind: 'pod' as const,
      attributes: Object.freeze({
        'k8s.node.name': 'worker-1',
        'k8s.pod.uid': `0f1e2d3c-aaaa-bbbb-cccc-${String(p).padStart(12, '0')}`,
        'k8s.pod.name': `checkout-7d9f8b6c5d-${p}x2kq`,
        'k8s.namespace.name': 'shop',
        'k8s.deployment.name': 'checkout',
        'service.name': 'checkout',
        'container.id': `${p}`.padStart(64, 'c'),
        'flowtel.attribution': 'pod',
      }),
    }),
  );
  const directions = ['transmit', 'receive'].map((d) => Object.freeze({ key: d, attributes: Object.freeze({ 'network.io.direction': d }) }));
  const external = Object.freeze({ attributes: Object.freeze({ 'flowtel.peer.kind': 'external' }), stale: false });
  const start = hrTime();
  const fields = ['bytes', 'packets'] as const;
  const rows = Array.from({ length: flows }, (_, i): SeriesTotals<Field> & AttributeParts => {
    const endpoint = pods[i % podCount];
    const ref: EndpointRef = { cgroupId: BigInt(1000 + (i % podCount)), netnsIno: 4026531840 };
    const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    const identity = new RowIdentity(ref, endpoint, directions[i & 1], address, 1024 + (i % 50_000), 6, 2, external, `${endpoint.keyId}|${address}|${i}`);
    return {
      endpoint,
      seriesKey: identity.seriesKey,
      get attributes() {
        return identity.attributes;
      },
      attributeParts: () => identity.attributeParts(),
      totals: { bytes: i * 1500, packets: i },
      total: (field: number) => (field === 0 ? i * 1500 : i),
      startTime: start,
    };
  });
  return { fields, length: rows.length, at: (index) => rows[index], [Symbol.iterator]: () => rows[Symbol.iterator]() };
}

/** A SeriesProducer publishing `flows` flows of `pods` pods, as the agent's is. */
export function flowProducer(flows: number, pods: number): SeriesProducer {
  const producer = new SeriesProducer(
    { name: 'flowtel', version: 'bench' },
    resourceFromAttributes({ 'service.name': 'flowtel', 'k8s.node.name': 'worker-1' }),
  );
  const rows = flowRows(flows, pods);
  producer.register(() =>
    counterSums(rows, [
      [METRIC_POD_NETWORK_IO, 'bytes'],
      [METRIC_POD_NETWORK_PACKETS, 'packets'],
    ]),
  );
  return producer;
}
