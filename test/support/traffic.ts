/** Traffic and faults on the test node, shared by the e2e tests. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { mustRun } from '../../src/testbed/exec';
import type { OtlpReceiver } from '../../src/testbed/otlp-receiver';
import type { TestNode } from '../../src/testbed/test-node';
import { waitFor } from './agent-process';

export const IPERF_PORT = 5201;
export const NFT_TABLE = 'flowtel_test';

/** Drops `percent`% of the TCP packets from pod `from` to pod `to`'s iperf port, at `to`'s input hook. */
export async function dropPercent(node: TestNode, from: string, to: string, percent: number): Promise<void> {
  const src = node.pod(from).ip;
  await nftRule(node, to, 'input', `ip saddr ${src} tcp dport ${IPERF_PORT} numgen random mod 100 < ${percent} counter drop comment "random-drop"`);
}

/**
 * Drops `percent`% of pod `from`'s TCP packets to the iperf port at its own
 * output hook: the kernel then fails to send some retransmissions (it counts
 * them in TcpExtTCPRetransFail), not only loses them on the way.
 */
export async function dropOutputPercent(node: TestNode, from: string, percent: number): Promise<void> {
  await nftRule(node, from, 'output', `tcp dport ${IPERF_PORT} numgen random mod 100 < ${percent} counter drop comment "random-output-drop"`);
}

/** iperf3 from `client` to `server` for `seconds`; returns the bytes the client sent. */
export async function iperf(
  node: TestNode,
  client: string,
  server: string,
  seconds: number,
  extraArgs: string[] = [],
): Promise<{ sentBytes: number; receivedBytes: number; retransmits: number }> {
  const serverPod = node.pod(server);
  const iperfServer = node.spawnInPod(server, 'iperf3', ['-s', '-1', '--forceflush', '-B', serverPod.ip, '-p', String(IPERF_PORT)]);
  let serverOut = '';
  iperfServer.stdout?.on('data', (d: Buffer) => (serverOut += d.toString()));
  await waitFor('iperf3 server to listen', () => (serverOut.includes('Server listening') ? true : undefined), 10_000);
  const result = await node.inPod(client, 'iperf3', ['-c', serverPod.ip, '-p', String(IPERF_PORT), '-t', String(seconds), '-J', ...extraArgs], {
    timeoutMs: (seconds + 20) * 1000,
  });
  assert.equal(result.code, 0, `iperf3 client failed: ${result.stderr}${result.stdout.slice(0, 500)}`);
  const report = JSON.parse(result.stdout) as { end: { sum_sent: { bytes: number; retransmits: number }; sum_received: { bytes: number } } };
  // sent: what the client wrote; received: what the server read (less, when the test ends with data still queued).
  return { sentBytes: report.end.sum_sent.bytes, receivedBytes: report.end.sum_received.bytes, retransmits: report.end.sum_sent.retransmits };
}

/**
 * Waits until a pod has no TCP connection left that could still retransmit
 * (only listeners and TIME-WAIT remain), so kernel counters read afterwards
 * are final: a dropped FIN or last ACK is retransmitted after iperf3 exits.
 */
export async function waitForClosedConnections(node: TestNode, pod: string, timeoutMs = 30_000): Promise<void> {
  const netns = node.pod(pod).netns;
  await waitFor(
    `the connections of pod ${pod} to close`,
    async () => {
      const out = await mustRun('ip', ['netns', 'exec', netns, 'ss', '-tanH', 'exclude', 'listening', 'exclude', 'time-wait']);
      return out.trim() === '' ? true : undefined;
    },
    timeoutMs,
  );
}

const NET_CLIENT = path.resolve(__dirname, '..', '..', '..', 'test', 'support', 'net_client.py');

/** Runs net_client.py inside a pod and returns its stdout. */
export async function netClient(node: TestNode, pod: string, args: Array<string | number>, timeoutMs = 60_000): Promise<string> {
  const result = await node.inPod(pod, 'python3', [NET_CLIENT, ...args.map(String)], { timeoutMs });
  assert.equal(result.code, 0, `net_client ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

/** Starts `net_client.py serve` in a pod and waits until it listens. */
export async function serveInPod(node: TestNode, pod: string, port: number, count: number, unread = false) {
  return startServer(node, pod, port, ['serve', String(port), String(count), ...(unread ? ['unread'] : [])]);
}

/** Starts `net_client.py late-serve`: it sends data after the client has closed, which the client's TIME_WAIT socket resets. */
export async function lateDataServerInPod(node: TestNode, pod: string, port: number) {
  return startServer(node, pod, port, ['late-serve', String(port)]);
}

/** Starts `net_client.py echo-serve`: one 4-byte answer per connection, the client closing first (as `churn` does). */
export async function echoServerInPod(node: TestNode, pod: string, port: number) {
  return startServer(node, pod, port, ['echo-serve', String(port)]);
}

async function startServer(node: TestNode, pod: string, port: number, args: string[]) {
  const child = node.spawnInPod(pod, 'python3', [NET_CLIENT, ...args]);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(`server on port ${port} in pod ${pod}`, () => (out.includes('ready') ? true : undefined), 10_000);
  return child;
}

/**
 * Pod `from` holds `count` connections to a server in pod `to`; resolves once
 * they are established. Killing the returned client closes them all (and
 * ends the server).
 */
export async function holdConnections(node: TestNode, from: string, to: string, port: number, count: number) {
  const server = node.spawnInPod(to, 'python3', [
    '-c',
    `import socket,time\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(("0.0.0.0",${port}));s.listen(${Math.max(8, count)});print("ready",flush=True)\nc=[s.accept() for _ in range(${count})]\ntime.sleep(600)`,
  ]);
  let ready = '';
  server.stdout?.on('data', (d: Buffer) => (ready += d.toString()));
  await waitFor('holding server', () => (ready.includes('ready') ? true : undefined));
  const client = node.spawnInPod(from, 'python3', [
    '-c',
    `import socket,time\nc=[socket.create_connection(("${node.pod(to).ip}",${port})) for _ in range(${count})]\nprint("held",flush=True)\ntime.sleep(600)`,
  ]);
  let held = '';
  client.stdout?.on('data', (d: Buffer) => (held += d.toString()));
  await waitFor('connections held', () => (held.includes('held') ? true : undefined));
  client.once('exit', () => server.kill('SIGKILL'));
  return client;
}

/** Adds an nft rule to the input or output chain of a pod's test table (creating the table and chain once). */
export async function nftRule(node: TestNode, pod: string, hook: 'input' | 'output', rule: string): Promise<void> {
  const netns = node.pod(pod).netns;
  await mustRun('ip', ['netns', 'exec', netns, 'nft', '-f', '-'], {
    input: `table inet ${NFT_TABLE} {\n  chain ${hook} {\n    type filter hook ${hook} priority 0;\n  }\n}\n`,
  });
  await mustRun('ip', ['netns', 'exec', netns, 'nft', `add rule inet ${NFT_TABLE} ${hook} ${rule}`]);
}

/**
 * The most segments one retransmitted skb of this pod can carry: its eth0's
 * GSO limit over the smallest MSS a 1500-byte path gives (MTU less 40 bytes of
 * headers and 12 of timestamps), capped by the device's segment limit.
 */
export async function maxSegmentsPerSkb(node: TestNode, pod: string): Promise<number> {
  const result = await node.inPod(pod, 'ip', ['-d', '-j', 'link', 'show', 'dev', 'eth0']);
  const [link] = JSON.parse(result.stdout) as Array<{ mtu: number; gso_max_size: number; gso_max_segs: number }>;
  return Math.min(link.gso_max_segs, Math.ceil(link.gso_max_size / (link.mtu - 52)));
}

/** Runs of tcp_retransmit_skb the kernel skipped as recursive, as the agent last exported them (0 where not counted). */
export function skippedRetransmitRuns(receiver: OtlpReceiver): number {
  return receiver
    .latestPoints('flowtel.agent.events.lost', { 'flowtel.loss.reason': 'program_skipped' })
    .filter((p) => p.attributes['flowtel.bpf.program'] === 'tcp_retransmit_skb')
    .reduce((sum, p) => sum + p.value, 0);
}

/**
 * The share of the kernel's retransmitted segments our program may miss without the kernel counting a skipped
 * run: calls it makes that the program never sees (docs/telemetry.md, probe group tcp-retransmits). Measured at
 * about 2 calls in 100,000 on the development VM, and up to 0.6% of segments in three loaded CI runs.
 */
export const UNSEEN_RETRANSMIT_SHARE = 0.01;

/**
 * Checks an exported retransmit total against the kernel's: never over it, and short by at most one skb per
 * run the kernel skipped (a retransmit in a softirq nested in one being counted on the same CPU) plus
 * UNSEEN_RETRANSMIT_SHARE of the kernel's count, at least one skb.
 */
export function assertRetransmitsWithinBound(exported: number, kernel: number, skippedRuns: number, maxSegments: number, what: string): void {
  const short = kernel - exported;
  const bound = skippedRuns * maxSegments + Math.max(maxSegments, Math.floor(kernel * UNSEEN_RETRANSMIT_SHARE));
  assert.ok(short >= 0, `${what}: exported ${exported} is over the kernel's ${kernel}`);
  assert.ok(
    short <= bound,
    `${what}: ${short} short of the kernel's ${kernel}; the bound is ${bound} (${skippedRuns} skipped runs of at most ${maxSegments} segments, 1% unseen)`,
  );
}
