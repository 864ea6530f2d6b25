/**
 * Attribution and row retirement over a real directory tree: a cgroup id is
 * the inode of its directory, so a temporary tree stands in for the cgroup fs.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { MapRows, NativeBpfObject, StructLayoutInfo } from '../../src/bpf/native';
import type { Attributes } from '@opentelemetry/api';
import { CgroupAttribution, type PodMetadataSource } from '../../src/k8s/attribution';
import { CgroupIndex } from '../../src/k8s/cgroup-index';
import { EndpointCounterTable } from '../../src/tables/endpoint-counters';
import { KernelHistogramTable } from '../../src/tables/kernel-histogram';
import type { DescribeRow } from '../../src/tables/row-identity';
import { withBatchReads } from '../support/fake-map';
import { tempDir } from '../support/tmp';

const UID = '3f0a6a5e-1b7c-4d2e-9f10-2a3b4c5d6e7f';
const ID = 'c'.repeat(64);

function tree(): { root: string; pod: string; service: string } {
  const root = tempDir('cgroups');
  const pod = path.join(root, `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID.replace(/-/g, '_')}.slice/cri-containerd-${ID}.scope`);
  const service = path.join(root, 'system.slice/sshd.service');
  fs.mkdirSync(pod, { recursive: true });
  fs.mkdirSync(service, { recursive: true });
  return { root, pod, service };
}

const ino = (dir: string): bigint => fs.statSync(dir, { bigint: true }).ino;

describe('cgroup attribution', () => {
  it('attributes kubepods cgroups to the pod, others to the node, vanished ones to unknown', () => {
    const { root, pod, service } = tree();
    const attribution = new CgroupAttribution(new CgroupIndex({ root }), 'worker-1');
    assert.deepEqual(attribution.resolve(ino(pod)).attributes, {
      'k8s.node.name': 'worker-1',
      'k8s.pod.uid': UID,
      'flowtel.k8s.pod.qos_class': 'besteffort',
      'flowtel.attribution': 'pod',
      'container.id': ID,
    });
    assert.deepEqual(attribution.resolve(ino(service)).attributes, { 'k8s.node.name': 'worker-1', 'flowtel.attribution': 'node' });
    assert.deepEqual(attribution.resolve(ino(root)).attributes, { 'k8s.node.name': 'worker-1', 'flowtel.attribution': 'node' });
    assert.equal(attribution.resolve(123456789n).kind, 'unknown');
  });

  it('finds a cgroup created after the first walk, re-walking at most once per interval', () => {
    const { root } = tree();
    let now = 0;
    const index = new CgroupIndex({ root, minRescanIntervalMs: 1000, now: () => now });
    index.rescan();
    const late = path.join(root, 'system.slice/late.service');
    fs.mkdirSync(late);
    assert.equal(index.pathOf(ino(late)), undefined, 'no re-walk within the interval');
    now = 1000;
    assert.equal(index.pathOf(ino(late)), 'system.slice/late.service');
    assert.equal(index.scanCount, 2);
  });
});

/** A kernel map stand-in for the aggregation logic: same row layout as the real per-CPU hash. */
class FakeCounterMap {
  rows = new Map<bigint, number[]>(); // cgroup id -> per-CPU [events, segments]
  deleted: bigint[] = [];
  readonly cpus = 2;
  object(): NativeBpfObject {
    const layouts: Record<string, StructLayoutInfo> = {
      k: {
        size: 32,
        members: {
          'endpoint.cgroup_id': { offset: 0, size: 8 },
          'endpoint.netns_ino': { offset: 8, size: 4 },
          'endpoint.server_port': { offset: 12, size: 2 },
          'endpoint.protocol': { offset: 14, size: 1 },
          'endpoint.family': { offset: 15, size: 1 },
          'endpoint.peer_addr': { offset: 16, size: 16 },
        },
      },
      v: { size: 16, members: { events: { offset: 0, size: 8 }, segments: { offset: 8, size: 8 } } },
    };
    return withBatchReads(
      {
        structLayout: (name: string) => layouts[name],
        mapReadAll: (): MapRows => {
          const entries = [...this.rows.entries()];
          const keys = Buffer.alloc(entries.length * 32);
          const values = Buffer.alloc(entries.length * 16 * this.cpus);
          entries.forEach(([id, perCpu], i) => {
            keys.writeBigUInt64LE(id, i * 32);
            for (let c = 0; c < this.cpus; c++) {
              values.writeBigUInt64LE(BigInt(perCpu[c * 2]), i * 32 + c * 16);
              values.writeBigUInt64LE(BigInt(perCpu[c * 2 + 1]), i * 32 + c * 16 + 8);
            }
          });
          return { count: entries.length, keys, values, keySize: 32, valueStride: 16 * this.cpus };
        },
        mapDeleteKeys: (_name: string, keys: Buffer) => {
          for (let off = 0; off < keys.length; off += 32) {
            const id = keys.readBigUInt64LE(off);
            this.deleted.push(id);
            this.rows.delete(id);
          }
          return keys.length / 32;
        },
      } as unknown as NativeBpfObject,
      true,
    );
  }
}

/** A table over the fake maps' layout (key struct 'k', value struct 'v' with events and segments). */
function counterTable(
  object: NativeBpfObject,
  possibleCpus: number,
  attribution: CgroupAttribution,
  options: {
    gracePeriodMs: number;
    idleFlowEvictMs?: number;
    liveFields?: readonly ('events' | 'segments')[];
    now: () => number;
    keyFields?: readonly string[];
    describe?: DescribeRow;
  },
) {
  const table = new EndpointCounterTable({
    object,
    mapName: 'm',
    keyStruct: 'k',
    valueStruct: 'v',
    fields: ['events', 'segments'] as const,
    attribution,
    possibleCpus,
    ...options,
  });
  // Each collection's series as an array (`rows`: as the table hands them over, read lazily).
  return { collect: () => [...table.collect()], rows: () => table.collect() };
}

describe('per-endpoint counter table', () => {
  it('sums CPUs, sums cgroups that share an endpoint, and retires removed cgroups without going backwards', () => {
    const { root, pod, service } = tree();
    const other = path.join(root, 'system.slice/cron.service');
    fs.mkdirSync(other);
    let now = 0;
    const index = new CgroupIndex({ root, staleAfterMs: 0, now: () => now });
    const attribution = new CgroupAttribution(index, 'worker-1');
    const map = new FakeCounterMap();
    map.rows.set(ino(pod), [1, 10, 2, 20]);
    map.rows.set(ino(service), [1, 1, 0, 0]);
    map.rows.set(ino(other), [0, 0, 3, 5]);
    const table = counterTable(map.object(), map.cpus, attribution, { gracePeriodMs: 1000, now: () => now });
    const byKind = (rows: ReturnType<typeof table.collect>) => Object.fromEntries(rows.map((r) => [r.endpoint.kind, r.totals]));
    assert.deepEqual(byKind(table.collect()), { pod: { events: 3, segments: 30 }, node: { events: 4, segments: 6 } });

    // Both the pod's container and one node service go away.
    const podId = ino(pod);
    const otherId = ino(other);
    fs.rmdirSync(pod);
    fs.rmdirSync(other);
    now = 10;
    assert.deepEqual(byKind(table.collect()), { pod: { events: 3, segments: 30 }, node: { events: 4, segments: 6 } }, 'kept during the grace period');
    assert.deepEqual(map.deleted, []);
    now = 2000;
    const after = byKind(table.collect());
    assert.deepEqual(map.deleted.sort(), [podId, otherId].sort(), 'rows of removed cgroups deleted from the map');
    assert.deepEqual(after.node, { events: 4, segments: 6 }, "the node's counter does not go backwards");
    map.rows.set(ino(service), [2, 2, 0, 0]);
    assert.deepEqual(byKind(table.collect()).node, { events: 5, segments: 7 });
    assert.equal(byKind(table.collect()).pod, undefined, "the removed pod container's series ends");
  });
});

/** Flow rows (endpoint + peer) with the same layout as FakeCounterMap, keyed by their key bytes. */
class FakeFlowMap {
  rows = new Map<string, number[]>(); // key hex -> per-CPU [events, segments]
  deleted = 0;
  readonly cpus = 1;
  /**
   * A flow row's key; `family` 10 with an IPv4 peer is a dual-stack (AF_INET6) socket's view of that peer. An IPv6
   * peer (`fd00::9`: one `::`, no embedded IPv4) is written as it is, with family 10.
   */
  static key(cgroupId: bigint, peer: string, port: number, family = 2): string {
    const key = Buffer.alloc(32);
    key.writeBigUInt64LE(cgroupId, 0);
    key.writeUInt16LE(port, 12);
    key.writeUInt8(6, 14);
    if (peer.includes(':')) {
      const [head, tail] = peer.split('::').map((part) => (part ? part.split(':') : []));
      const groups = [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
      key.writeUInt8(10, 15);
      groups.forEach((g, i) => key.writeUInt16BE(parseInt(g, 16), 16 + i * 2));
    } else {
      key.writeUInt8(family, 15);
      key.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...peer.split('.').map(Number)], 16);
    }
    return key.toString('hex');
  }
  object(): NativeBpfObject {
    const base = new FakeCounterMap().object();
    return withBatchReads(
      {
        structLayout: base.structLayout,
        mapReadAll: (): MapRows => {
          const entries = [...this.rows.entries()];
          const keys = Buffer.concat(entries.map(([k]) => Buffer.from(k, 'hex')));
          const values = Buffer.alloc(entries.length * 16);
          entries.forEach(([, v], i) => {
            values.writeBigUInt64LE(BigInt(v[0]), i * 16);
            values.writeBigUInt64LE(BigInt(v[1]), i * 16 + 8);
          });
          return { count: entries.length, keys, values, keySize: 32, valueStride: 16 };
        },
        mapDeleteKeys: (_name: string, keys: Buffer) => {
          for (let off = 0; off < keys.length; off += 32) if (this.rows.delete(keys.toString('hex', off, off + 32))) this.deleted++;
          return keys.length / 32;
        },
      } as unknown as NativeBpfObject,
      true,
    );
  }
}

/** Flow rows whose value is a struct flowtel_histogram with 4 buckets (lower bounds 1, 1.25, 1.5, 1.75). */
class FakeHistogramMap {
  rows = new Map<string, { count: number; sum: number; buckets: number[] }>(); // key hex (FakeFlowMap.key) -> value
  deleted = 0;
  object(): NativeBpfObject {
    const base = new FakeCounterMap().object();
    const histogram: StructLayoutInfo = {
      size: 48,
      members: { count: { offset: 0, size: 8 }, sum: { offset: 8, size: 8 }, buckets: { offset: 16, size: 32 } },
    };
    return withBatchReads(
      {
        structLayout: (name: string) => (name === 'flowtel_histogram' ? histogram : base.structLayout(name)),
        mapReadAll: (): MapRows => {
          const entries = [...this.rows.entries()];
          const keys = Buffer.concat(entries.map(([k]) => Buffer.from(k, 'hex')));
          const values = Buffer.alloc(entries.length * 48);
          entries.forEach(([, v], i) => {
            values.writeBigUInt64LE(BigInt(v.count), i * 48);
            values.writeBigUInt64LE(BigInt(v.sum), i * 48 + 8);
            v.buckets.forEach((n, b) => values.writeBigUInt64LE(BigInt(n), i * 48 + 16 + b * 8));
          });
          return { count: entries.length, keys, values, keySize: 32, valueStride: 48 };
        },
        mapDeleteKeys: (_name: string, keys: Buffer) => {
          for (let off = 0; off < keys.length; off += 32) if (this.rows.delete(keys.toString('hex', off, off + 32))) this.deleted++;
          return keys.length / 32;
        },
      } as unknown as NativeBpfObject,
      false,
    );
  }
}

/** Kubernetes names that a test can change, notifying like the metadata cache does. */
class FakeMetadata implements PodMetadataSource {
  podName = 'checkout-1';
  peers = new Map<string, string>();
  private podListeners: Array<(uid: string) => void> = [];
  private peerListeners: Array<(address: string) => void> = [];
  podAttributesOf(): Attributes {
    return { 'k8s.pod.name': this.podName };
  }
  peerOf(address: string): { attributes: Attributes } {
    const name = this.peers.get(address);
    return { attributes: name ? { 'peer.k8s.pod.name': name } : { 'flowtel.peer.kind': 'external' } };
  }
  onPodChange(listener: (uid: string) => void): void {
    this.podListeners.push(listener);
  }
  onPeerChange(listener: (address: string) => void): void {
    this.peerListeners.push(listener);
  }
  renamePod(name: string): void {
    this.podName = name;
    this.podListeners.forEach((l) => l(UID));
  }
  setPeer(address: string, name: string): void {
    this.peers.set(address, name);
    this.peerListeners.forEach((l) => l(address));
  }
}

describe('flow rows: cached identities', () => {
  /** `describe`: rows described by the group's own function (each its group, a column of its own). */
  function flowTable(describe?: { keyFields?: readonly string[]; describe?: DescribeRow; liveFields?: readonly ('events' | 'segments')[] }) {
    const { root, pod } = tree();
    let now = 0;
    const index = new CgroupIndex({ root, minRescanIntervalMs: 10_000, now: () => now });
    index.rescan();
    const attribution = new CgroupAttribution(index, 'worker-1');
    const metadata = new FakeMetadata();
    attribution.useMetadata(metadata);
    const map = new FakeFlowMap();
    const table = counterTable(map.object(), map.cpus, attribution, { gracePeriodMs: 60_000, idleFlowEvictMs: 5_000, now: () => now, ...describe });
    const clock = { set: (ms: number) => (now = ms) };
    return { root, pod, map, table, metadata, clock };
  }
  const byPeer = (rows: Array<{ attributes: Attributes; totals: Record<string, number> }>) =>
    Object.fromEntries(rows.map((r) => [String(r.attributes['network.peer.address']), { ...r.attributes, ...r.totals }]));

  it('renames a series when its peer or its pod gets new Kubernetes names, keeping its totals and start time', () => {
    const { pod, map, table, metadata } = flowTable();
    map.rows.set(FakeFlowMap.key(ino(pod), '10.0.0.7', 443), [1, 10]);
    map.rows.set(FakeFlowMap.key(ino(pod), '10.0.0.8', 443), [2, 20]);
    const first = table.collect();
    const start = first.find((r) => r.attributes['network.peer.address'] === '10.0.0.7')?.startTime;
    let rows = byPeer(first);
    assert.equal(rows['10.0.0.7']['flowtel.peer.kind'], 'external');
    assert.equal(rows['10.0.0.7']['k8s.pod.name'], 'checkout-1');

    metadata.setPeer('10.0.0.7', 'payments-1');
    map.rows.set(FakeFlowMap.key(ino(pod), '10.0.0.7', 443), [3, 30]);
    const second = table.collect();
    rows = byPeer(second);
    assert.equal(rows['10.0.0.7']['peer.k8s.pod.name'], 'payments-1', 'the changed peer is renamed');
    assert.equal(rows['10.0.0.7'].segments, 30);
    assert.equal(rows['10.0.0.8']['flowtel.peer.kind'], 'external', 'other peers keep their names');
    assert.deepEqual(second.find((r) => r.attributes['network.peer.address'] === '10.0.0.7')?.startTime, start, 'same series, same start');

    metadata.renamePod('checkout-2');
    rows = byPeer(table.collect());
    assert.equal(rows['10.0.0.7']['k8s.pod.name'], 'checkout-2');
    assert.equal(rows['10.0.0.8']['k8s.pod.name'], 'checkout-2');
    assert.equal(rows['10.0.0.8'].events, 2);
  });

  it('keeps a series shared by node cgroups whole when one of its rows is evicted, and ends it with its last row', () => {
    const { root, map, table, clock } = flowTable();
    const kubelet = path.join(root, 'system.slice/kubelet.service');
    const containerd = path.join(root, 'system.slice/containerd.service');
    fs.mkdirSync(kubelet);
    fs.mkdirSync(containerd);
    const t0 = 10_000; // the index re-walks and finds both cgroups: they are the node
    const rowOf = (dir: string) => FakeFlowMap.key(ino(dir), '10.0.0.1', 6443);
    const apiServer = () => table.collect().filter((r) => r.attributes['network.peer.address'] === '10.0.0.1');
    clock.set(t0);
    map.rows.set(rowOf(kubelet), [1, 10]);
    map.rows.set(rowOf(containerd), [2, 20]);
    const first = apiServer();
    assert.deepEqual(
      first.map((r) => r.totals),
      [{ events: 3, segments: 30 }],
      'both cgroups are the node: one series',
    );
    assert.equal(first[0].attributes['flowtel.attribution'], 'node');
    clock.set(t0 + 1_000);
    map.rows.set(rowOf(kubelet), [5, 50]); // containerd stays idle from here on
    apiServer();
    clock.set(t0 + 5_000);
    map.rows.set(rowOf(kubelet), [6, 60]);
    assert.deepEqual(
      apiServer().map((r) => r.totals),
      [{ events: 8, segments: 80 }],
    );
    assert.equal(map.deleted, 1, "containerd's idle row was deleted from the kernel map");
    clock.set(t0 + 6_000);
    map.rows.set(rowOf(kubelet), [7, 70]);
    assert.deepEqual(
      apiServer().map((r) => r.totals),
      [{ events: 9, segments: 90 }],
      'the series did not go backwards',
    );
    clock.set(t0 + 11_000);
    assert.deepEqual(
      apiServer().map((r) => r.totals),
      [{ events: 9, segments: 90 }],
    );
    assert.equal(map.deleted, 2, "kubelet's row idled too");
    assert.deepEqual(apiServer(), [], 'the series ended with its last row');
  });

  it('keeps every column of the series that stay when an ended one is compacted away', () => {
    // Each server port its own group (the group column), as a group's describe would classify rows.
    const { pod, map, table, clock } = flowTable({
      keyFields: ['endpoint.server_port'],
      describe: (key) => ({ key: `port ${key.uint('endpoint.server_port')}`, attributes: { 'test.group': `port ${key.uint('endpoint.server_port')}` } }),
    });
    // The idle flow comes first, so the two that stay move down a slot each when it goes.
    map.rows.set(FakeFlowMap.key(ino(pod), '10.0.0.7', 443), [1, 1]);
    // An IPv4 peer and an IPv6 one (the family column decides its network type), on different server ports.
    const stays = { '10.0.0.8': FakeFlowMap.key(ino(pod), '10.0.0.8', 53), 'fd00::9': FakeFlowMap.key(ino(pod), 'fd00::9', 8080) };
    const segmentsPer = { '10.0.0.8': 8, 'fd00::9': 9 } as const;
    let moved = 0;
    const move = () => {
      moved++;
      for (const [peer, key] of Object.entries(stays)) map.rows.set(key, [moved, segmentsPer[peer as keyof typeof stays] * moved]);
    };
    const byPeerSeries = () =>
      Object.fromEntries(
        table.collect().map((r) => [String(r.attributes['network.peer.address']), { attributes: r.attributes, start: r.startTime, totals: r.totals }]),
      );
    move();
    const before = byPeerSeries();
    assert.deepEqual(Object.keys(before).sort(), ['10.0.0.7', '10.0.0.8', 'fd00::9']);
    assert.equal(before['fd00::9'].attributes['network.type'], 'ipv6');
    assert.equal(before['fd00::9'].attributes['test.group'], 'port 8080', "the row's group describes it");
    // 10.0.0.7 never moves: evicted after 5 s idle, exported once more with its final totals, then its series ends.
    for (const at of [1_000, 6_000, 7_000, 8_000]) {
      clock.set(at);
      move();
      table.collect();
    }
    assert.equal(map.deleted, 1, 'the idle row was evicted');
    const after = byPeerSeries();
    assert.deepEqual(Object.keys(after).sort(), ['10.0.0.8', 'fd00::9'], 'the idle series ended');
    for (const peer of Object.keys(stays) as Array<keyof typeof stays>) {
      assert.deepEqual(after[peer].attributes, before[peer].attributes, `${peer}: the same attributes (port, network type, peer, group)`);
      assert.deepEqual(after[peer].start, before[peer].start, `${peer}: the same start time`);
      assert.deepEqual(after[peer].totals, { events: moved, segments: segmentsPer[peer] * moved }, `${peer}: its own totals`);
    }
  });

  it('names a row whose cgroup appears after its first collection, and evicts flows that stop moving', () => {
    const { root, map, table, clock } = flowTable();
    // Created after the index's walk: unknown until the next walk, then the same row is named.
    const late = path.join(
      root,
      `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID.replace(/-/g, '_')}.slice/cri-containerd-${'d'.repeat(64)}.scope`,
    );
    fs.mkdirSync(late);
    map.rows.set(FakeFlowMap.key(ino(late), '10.0.0.9', 53), [1, 1]);
    assert.equal(table.collect()[0].attributes['flowtel.attribution'], 'unknown');
    clock.set(1_000);
    assert.equal(table.collect()[0].attributes['flowtel.attribution'], 'unknown', 'no re-walk within the interval');
    clock.set(10_000);
    map.rows.set(FakeFlowMap.key(ino(late), '10.0.0.9', 53), [2, 2]);
    assert.equal(table.collect()[0].attributes['container.id'], 'd'.repeat(64));

    clock.set(12_000);
    map.rows.set(FakeFlowMap.key(ino(late), '10.0.0.9', 53), [3, 3]); // moved: idle time starts again
    assert.equal(table.collect().length, 1);
    clock.set(16_999);
    assert.equal(table.collect().length, 1);
    assert.equal(map.deleted, 0, 'not idle for 5 s yet');
    clock.set(17_000);
    table.collect();
    assert.equal(map.deleted, 1, 'idle for 5 s: deleted from the kernel map');
    assert.equal(table.collect().length, 0, 'and its series ends');
  });

  it('keeps an idle flow row while it counts something live, and evicts it once that is gone', () => {
    // As tcp-connections' rows: a gauge of open sockets (here "events") beside counters that stop moving.
    const { pod, map, table, clock } = flowTable({ liveFields: ['events'] });
    const key = FakeFlowMap.key(ino(pod), '10.0.0.7', 5432);
    map.rows.set(key, [1, 40]);
    table.collect();
    clock.set(60_000);
    table.collect();
    assert.equal(map.deleted, 0, 'an open connection keeps its row however long it is quiet');
    map.rows.set(key, [0, 41]); // it closed
    clock.set(61_000);
    table.collect();
    clock.set(66_000);
    table.collect();
    assert.equal(map.deleted, 1, 'closed and idle for 5 s: deleted');
  });

  it('keeps every flow on its own totals while thousands of rows come and go (read in several batches; the columns grow, shrink and move)', () => {
    const { pod, map, table, clock } = flowTable();
    const peerOf = (n: number) => `10.1.${n >> 8}.${n & 255}`;
    const key = (n: number) => FakeFlowMap.key(ino(pod), peerOf(n), 443);
    const segmentsByPeer = () => Object.fromEntries(Object.entries(byPeer(table.collect())).map(([peer, row]) => [peer, row.segments]));
    for (let n = 0; n < 9000; n++) map.rows.set(key(n), [1, n]);
    let seen = segmentsByPeer();
    assert.equal(Object.keys(seen).length, 9000);
    for (let n = 0; n < 9000; n += 750) assert.equal(seen[peerOf(n)], n, `flow ${n}`);
    // All but every tenth flow stop moving and are evicted; the rest keep counting.
    clock.set(1_000);
    for (let n = 0; n < 9000; n += 10) map.rows.set(key(n), [2, n + 1]);
    segmentsByPeer();
    clock.set(6_000);
    for (let n = 0; n < 9000; n += 10) map.rows.set(key(n), [3, n + 2]);
    segmentsByPeer();
    assert.equal(map.deleted, 8100, 'the idle flows were deleted from the kernel map');
    seen = segmentsByPeer();
    assert.equal(Object.keys(seen).length, 900, 'their series ended; the moving ones stay');
    for (let n = 0; n < 9000; n += 10) assert.equal(seen[peerOf(n)], n + 2, `flow ${n} after the others went`);
    // New flows take new slots next to the moved ones.
    for (let n = 9000; n < 9100; n++) map.rows.set(key(n), [1, n]);
    seen = segmentsByPeer();
    assert.equal(Object.keys(seen).length, 1000);
    assert.equal(seen[peerOf(9050)], 9050);
    assert.equal(seen[peerOf(8990)], 8992);
  });

  it('gives rows that were unknown their own series once their cgroups are indexed', () => {
    const { root, map, table, clock } = flowTable();
    // Two pods' containers created after the index's walk: both unknown at first, so one series.
    const container = (uid: string, id: string) =>
      path.join(root, `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${uid.replace(/-/g, '_')}.slice/cri-containerd-${id}.scope`);
    const p = container('11111111-1111-4111-8111-111111111111', 'e'.repeat(64));
    const q = container('22222222-2222-4222-8222-222222222222', 'f'.repeat(64));
    fs.mkdirSync(p, { recursive: true });
    fs.mkdirSync(q, { recursive: true });
    map.rows.set(FakeFlowMap.key(ino(p), '10.0.0.1', 443), [1, 10]);
    map.rows.set(FakeFlowMap.key(ino(q), '10.0.0.1', 443), [2, 20]);
    const first = table.collect();
    assert.deepEqual(
      first.map((r) => [r.attributes['flowtel.attribution'], r.totals]),
      [['unknown', { events: 3, segments: 30 }]],
    );
    clock.set(10_000); // the index may walk again: both are found
    const byContainer = Object.fromEntries(table.collect().map((r) => [String(r.attributes['container.id']), r.totals]));
    assert.deepEqual(byContainer, { ['e'.repeat(64)]: { events: 1, segments: 10 }, ['f'.repeat(64)]: { events: 2, segments: 20 } });
  });

  it('counts an IPv4 peer seen by a dual-stack socket and by an IPv4 socket as one series', () => {
    const { pod, map, table } = flowTable();
    map.rows.set(FakeFlowMap.key(ino(pod), '10.0.0.5', 443, 2), [1, 10]);
    map.rows.set(FakeFlowMap.key(ino(pod), '10.0.0.5', 443, 10), [2, 20]);
    const rows = table.collect();
    assert.equal(rows.length, 1, 'one series, as its attributes and series key are one');
    assert.deepEqual(rows[0].totals, { events: 3, segments: 30 });
    assert.equal(rows[0].attributes['network.type'], 'ipv4');
  });

  it('keeps the series of a collection readable after the next one, each with its own attributes and totals', () => {
    const { pod, map, table } = flowTable();
    const table2 = table as unknown as { rows: () => Iterable<{ attributes: Attributes; totals: Record<string, number>; seriesKey: string }> };
    const peerOf = (n: number) => `10.1.${n >> 8}.${n & 255}`;
    const key = (n: number) => FakeFlowMap.key(ino(pod), peerOf(n), 443);
    for (let n = 0; n < 100; n++) map.rows.set(key(n), [1, n]);
    const first = table2.rows();
    // The next collection drops most flows (their series go, the rest move) and adds new ones (the columns grow).
    for (let n = 0; n < 100; n++) if (n % 10 !== 0) map.rows.delete(key(n));
    for (let n = 100; n < 400; n++) map.rows.set(key(n), [1, n]);
    for (let n = 0; n < 100; n += 10) map.rows.set(key(n), [1, n + 1000]);
    const second = [...table2.rows()];
    assert.equal(second.length, 310);
    // An export of the first collection still being sent reads each of its series as that series.
    const firstRead = [...first];
    assert.equal(firstRead.length, 100);
    for (const row of firstRead) {
      const [, , high, low] = String(row.attributes['network.peer.address']).split('.').map(Number);
      const n = high * 256 + low;
      const expected = n % 10 === 0 ? n + 1000 : n; // a series still counting reads its newer total
      assert.equal(row.totals.segments, expected, `flow ${n} of the first collection`);
      assert.ok(row.seriesKey.includes(`${peerOf(n)}|443|6`), row.seriesKey);
    }
  });

  it('keeps a series of several rows whole for an earlier collection read after the columns grew in the middle of the next', () => {
    const { root, pod, map, table, clock } = flowTable();
    const table2 = table as unknown as { rows: () => Iterable<{ attributes: Attributes; totals: Record<string, number> }> };
    const kubelet = path.join(root, 'system.slice/kubelet.service');
    const containerd = path.join(root, 'system.slice/containerd.service');
    fs.mkdirSync(kubelet);
    fs.mkdirSync(containerd);
    clock.set(10_000); // the index walks again and finds both: they are the node, one series
    const rowOf = (dir: string) => FakeFlowMap.key(ino(dir), '10.0.0.1', 6443);
    map.rows.set(rowOf(kubelet), [1, 10]);
    map.rows.set(rowOf(containerd), [2, 20]);
    const first = table2.rows();
    // Next collection: kubelet's row, then 200 new flows (the series columns grow), then containerd's row.
    map.rows.delete(rowOf(containerd));
    for (let n = 0; n < 200; n++) map.rows.set(FakeFlowMap.key(ino(pod), `10.2.0.${n}`, 80), [1, 1]);
    map.rows.set(rowOf(kubelet), [3, 30]);
    map.rows.set(rowOf(containerd), [4, 40]);
    const second = [...table2.rows()];
    const apiServer = (rows: Iterable<{ attributes: Attributes; totals: Record<string, number> }>) =>
      [...rows].filter((r) => r.attributes['network.peer.address'] === '10.0.0.1').map((r) => r.totals);
    assert.deepEqual(apiServer(second), [{ events: 7, segments: 70 }]);
    assert.deepEqual(
      apiServer(first),
      [{ events: 7, segments: 70 }],
      'the first collection reads the whole newer total, not the part summed before the columns grew',
    );
  });

  it('keeps each row on its own series when the map returns rows in another order, or another row in a place', () => {
    const { pod, map, table } = flowTable();
    const key = (peer: string) => FakeFlowMap.key(ino(pod), peer, 443);
    const fill = (rows: Array<[string, number]>) => {
      map.rows.clear();
      for (const [peer, segments] of rows) map.rows.set(key(peer), [1, segments]);
    };
    const segmentsByPeer = () => Object.fromEntries(Object.entries(byPeer(table.collect())).map(([peer, row]) => [peer, row.segments]));
    fill([
      ['10.0.0.1', 1],
      ['10.0.0.2', 2],
      ['10.0.0.3', 3],
    ]);
    assert.deepEqual(segmentsByPeer(), { '10.0.0.1': 1, '10.0.0.2': 2, '10.0.0.3': 3 });
    assert.deepEqual(segmentsByPeer(), { '10.0.0.1': 1, '10.0.0.2': 2, '10.0.0.3': 3 }, 'same order again');
    // Rows found by position last time are now elsewhere; a new row takes the place of one that went.
    fill([
      ['10.0.0.3', 30],
      ['10.0.0.4', 40],
      ['10.0.0.1', 10],
    ]);
    assert.deepEqual(segmentsByPeer(), { '10.0.0.3': 30, '10.0.0.4': 40, '10.0.0.1': 10 });
    fill([
      ['10.0.0.5', 50],
      ['10.0.0.4', 41],
    ]);
    assert.deepEqual(segmentsByPeer(), { '10.0.0.5': 50, '10.0.0.4': 41 });
  });
});

describe('kernel histogram table', () => {
  /** Two node cgroups (kubelet, containerd), a fake histogram map and its table, on a clock the test moves. */
  function nodeCgroupsTable() {
    const { root } = tree();
    const kubelet = path.join(root, 'system.slice/kubelet.service');
    const containerd = path.join(root, 'system.slice/containerd.service');
    fs.mkdirSync(kubelet);
    fs.mkdirSync(containerd);
    const clock = { now: 0 };
    const index = new CgroupIndex({ root, staleAfterMs: 0, now: () => clock.now });
    const attribution = new CgroupAttribution(index, 'worker-1');
    const map = new FakeHistogramMap();
    // Export boundary 1.5: kernel buckets 0 and 1 below it, 2 and 3 above.
    const table = new KernelHistogramTable({
      object: map.object(),
      mapName: 'm',
      keyStruct: 'k',
      attribution,
      possibleCpus: 4,
      boundaries: [1.5],
      scale: 1,
      gracePeriodMs: 1000,
      now: () => clock.now,
    });
    return { kubelet, containerd, clock, map, table };
  }

  it('keeps a series shared by node cgroups whole when one of its rows is deleted, and ends it with its last row', () => {
    const { kubelet, containerd, clock, map, table } = nodeCgroupsTable();
    const rowOf = (dir: string) => FakeFlowMap.key(ino(dir), '10.0.0.1', 6443);
    const kubeletRow = rowOf(kubelet);
    map.rows.set(kubeletRow, { count: 2, sum: 3, buckets: [1, 0, 1, 0] });
    map.rows.set(rowOf(containerd), { count: 1, sum: 2, buckets: [0, 0, 0, 1] });
    const apiServer = () =>
      table
        .collect()
        .filter((s) => s.attributes['network.peer.address'] === '10.0.0.1')
        .map((s) => ({ node: s.attributes['flowtel.attribution'], count: s.count, sum: s.sum, counts: s.counts }));
    assert.deepEqual(apiServer(), [{ node: 'node', count: 3, sum: 5, counts: [1, 2] }], 'both cgroups are the node: one series');

    fs.rmdirSync(containerd);
    clock.now = 10;
    apiServer(); // containerd is seen gone: its grace period starts
    clock.now = 2000;
    assert.deepEqual(apiServer(), [{ node: 'node', count: 3, sum: 5, counts: [1, 2] }], "containerd's row is deleted, its totals kept");
    assert.equal(map.deleted, 1);
    map.rows.set(kubeletRow, { count: 3, sum: 4, buckets: [1, 1, 1, 0] });
    clock.now = 3000;
    assert.deepEqual(apiServer(), [{ node: 'node', count: 4, sum: 6, counts: [2, 2] }], 'the series did not go backwards');

    fs.rmdirSync(kubelet);
    clock.now = 4000;
    apiServer();
    clock.now = 6000;
    assert.deepEqual(apiServer(), [{ node: 'node', count: 4, sum: 6, counts: [2, 2] }], 'exported once more with its final totals');
    assert.equal(map.deleted, 2);
    assert.deepEqual(apiServer(), [], 'the series ended with its last row');
  });

  it('exports a count equal to the sum of the bucket counts when the copy caught the kernel between its adds', () => {
    const { kubelet, map, table } = nodeCgroupsTable();
    // The kernel had added to count but not yet to the value's bucket when the row was copied.
    map.rows.set(FakeFlowMap.key(ino(kubelet), '10.0.0.1', 6443), { count: 4, sum: 7, buckets: [1, 0, 2, 0] });
    const [series] = table.collect();
    assert.deepEqual(series.counts, [1, 2]);
    assert.equal(series.count, 3, 'OTLP requires count = Σ bucket counts');
  });

  it('deletes exactly the rows of a removed cgroup when they span several batches of the map walk', () => {
    // Expired keys are gathered while the walk goes on; each must be a copy, not a view of the batch the next one overwrites.
    const { kubelet, containerd, clock, map, table } = nodeCgroupsTable();
    const perCgroup = 5000; // 10,000 rows of 80 bytes: three batches of at most 4,096
    const peer = (n: number) => `10.1.${n >> 8}.${n & 255}`;
    for (let n = 0; n < perCgroup; n++) {
      map.rows.set(FakeFlowMap.key(ino(kubelet), peer(n), 443), { count: 1, sum: 1, buckets: [1, 0, 0, 0] });
      map.rows.set(FakeFlowMap.key(ino(containerd), peer(n), 443), { count: 1, sum: 1, buckets: [1, 0, 0, 0] });
    }
    const kubeletKeys = [...map.rows.keys()].filter((_, i) => i % 2 === 0);
    table.collect();
    fs.rmdirSync(containerd);
    clock.now = 10;
    table.collect(); // containerd is seen gone: its grace period starts
    clock.now = 2000;
    table.collect();
    assert.equal(map.deleted, perCgroup, "every one of containerd's rows deleted");
    assert.deepEqual([...map.rows.keys()].sort(), kubeletKeys.sort(), "kubelet's rows all kept");
  });
});

describe('cgroup paths as /proc shows them', () => {
  it('resolves absolute paths, and relative ones from inside a cgroup namespace', () => {
    const { root, pod } = tree();
    const index = new CgroupIndex({ root });
    index.rescan();
    const relativeToRoot = pod.slice(root.length);
    assert.equal(index.idOfProcPath(relativeToRoot), ino(pod));
    // The agent's container sits two levels deep; its /proc/<pid>/cgroup view of the pod:
    assert.equal(index.idOfProcPath(`/../..${relativeToRoot}`), ino(pod));
    assert.equal(index.idOfProcPath('/../../kubepods.slice/no-such.slice'), undefined);
  });
});
