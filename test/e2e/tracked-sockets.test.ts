/**
 * tcp-connections keeps each socket's connect or establishment time in a
 * bounded kernel table from connect or accept to close. When the table is
 * full, a socket must be counted as lost (map_full), never dropped silently,
 * and each close must free its entry for the sockets that come after.
 */
import assert from 'node:assert/strict';
import { bpfMapEntryCount } from '../../src/testbed/kernel-counters';
import type { OtlpReceiver } from '../../src/testbed/otlp-receiver';
import type { TestNode } from '../../src/testbed/test-node';
import { freshExport } from '../support/agent-process';
import { onlyGroupConfig, useScenario } from '../support/scenario';
import { holdConnections, netClient, serveInPod, waitForClosedConnections } from '../support/traffic';

const PODS = [{ name: 'a' }, { name: 'b' }];
const TABLE = 'tracked_sockets';
const TABLE_SIZE = 16;
/** Connections held open at once: both ends are on this node, so twice as many sockets, more than the table holds. */
const HELD = 12;
/** Connections made one after another once the table has room again. */
const LATER = 5;

describe('e2e: tcp-connections with a full table of tracked sockets', function () {
  this.timeout(120_000);
  let node: TestNode;
  let receiver: OtlpReceiver;
  useScenario(PODS, onlyGroupConfig('tcpConnections', { maxTrackedSockets: TABLE_SIZE }), (s) => ({ node, receiver } = s));

  const lost = () => receiver.latestTotal('flowtel.agent.events.lost', { 'flowtel.loss.reason': 'map_full' });
  const closes = (pod: string, role: 'client' | 'server') =>
    receiver.latestTotal('flowtel.tcp.connection.closes', { 'k8s.pod.uid': node.pod(pod).uid, 'flowtel.tcp.role': role });
  const handshakes = () =>
    receiver
      .latestPoints('flowtel.tcp.handshake.duration', { 'k8s.pod.uid': node.pod('a').uid, 'flowtel.tcp.role': 'client' })
      .reduce((sum, p) => sum + (p.count ?? 0), 0);

  it('counts every socket it has no room for as lost, and each close frees an entry', async () => {
    await freshExport(receiver);
    // Sockets of the node tracked before the test (the agent's own OTLP connection, at least).
    const entriesBefore = await bpfMapEntryCount(TABLE);
    const before = { lost: lost(), clientCloses: closes('a', 'client'), serverCloses: closes('b', 'server') };

    const holder = await holdConnections(node, 'a', 'b', 7200, HELD);
    const entriesHeld = await bpfMapEntryCount(TABLE);
    holder.kill('SIGKILL');
    await waitForClosedConnections(node, 'a');
    await waitForClosedConnections(node, 'b');
    const entriesAfter = await bpfMapEntryCount(TABLE);
    await freshExport(receiver);

    const tracked = closes('a', 'client') - before.clientCloses + (closes('b', 'server') - before.serverCloses);
    const lostSockets = lost() - before.lost;
    console.log(
      `      table entries ${entriesBefore} -> ${entriesHeld} held -> ${entriesAfter} closed; ` +
        `${2 * HELD} sockets: ${tracked} tracked to their close, ${lostSockets} counted as map_full`,
    );
    assert.ok(entriesBefore + 2 * HELD > TABLE_SIZE, `the test needs more sockets than the table's ${TABLE_SIZE - entriesBefore} free entries`);
    assert.equal(entriesHeld, TABLE_SIZE, 'the kernel table filled up');
    assert.ok(lostSockets > 0, 'no socket counted as lost');
    assert.equal(tracked + lostSockets, 2 * HELD, 'each socket either tracked to its close or counted as lost');
    assert.equal(entriesAfter, entriesBefore, 'the closes freed every entry the held connections took');

    // With room again, every new socket is tracked: its handshake, its close.
    const handshakesBefore = handshakes();
    const closesBefore = { client: closes('a', 'client'), server: closes('b', 'server') };
    await serveInPod(node, 'b', 7201, LATER);
    assert.deepEqual(JSON.parse(await netClient(node, 'a', ['connect', node.pod('b').ip, 7201, LATER, 0, 100])), Array(LATER).fill('ok'));
    await waitForClosedConnections(node, 'a');
    await waitForClosedConnections(node, 'b');
    await freshExport(receiver);
    assert.equal(handshakes() - handshakesBefore, LATER, 'client handshakes after the table emptied');
    assert.equal(closes('a', 'client') - closesBefore.client, LATER, "A's closes as the client");
    assert.equal(closes('b', 'server') - closesBefore.server, LATER, "B's closes as the server");
    assert.equal(lost() - before.lost, lostSockets, 'no socket lost once the table had room');
    assert.equal(await bpfMapEntryCount(TABLE), entriesBefore, 'the later connections left no entry behind');
  });
});
