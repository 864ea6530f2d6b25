/**
 * Benchmark: the Kubernetes metadata cache's initial sync, time and memory.
 *
 * Driver (default): spawns the API-server fixture (bench/k8s-api-fixture.ts, a
 * separate process: 10,000 pods on 100 nodes in 50 namespaces, 2,000 services,
 * 100 nodes), then, for each run, a fresh `node --expose-gc k8s-sync.js --once`
 * process that measures one initial sync of KubernetesMetadata (resolvePeers,
 * on node bench-node-0) and prints a JSON result. Summarises the runs against
 * the targets, prints a table and rewrites its section of docs/performance.md.
 * The fixture is killed at the end, whatever happened.
 *
 *   node dist/bench/run.js k8s [--runs 3] [--no-doc] [--strict] [--node-arg --cpu-prof ...]
 *        [--pods N --nodes N --namespaces N --services N --lean]   (passed to the fixture)
 *
 * One run by hand, against a fixture already started:
 *   node --expose-gc dist/bench/k8s-sync.js --once --fixture /tmp/flowtel-bench-k8s-XXXX/fixture.json
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import readline from 'node:readline';
import { AgentLog } from '../src/util/log';
import { KubeClient } from '../src/k8s/kube-client';
import { KubernetesMetadata } from '../src/k8s/metadata';
import {
  ATTR_FLOWTEL_PEER_KIND,
  ATTR_K8S_CONTAINER_NAME,
  ATTR_K8S_NAMESPACE_NAME,
  ATTR_K8S_NODE_NAME,
  ATTR_K8S_POD_NAME,
  ATTR_K8S_SERVICE_NAME,
  PEER_PREFIX,
  WORKLOAD_NAME_KEYS,
} from '../src/semconv';
import type { FixtureDescription } from './k8s-api-fixture';
import { environment, environmentMarkdown, MiB, repoRoot, summarize, table, updateSection, type Summary } from './report';

export const TITLE = 'Kubernetes metadata cache: initial sync';
const SECTION = 'k8s-sync';
export const TARGETS = { syncMs: 5_000, rssGrowthBytes: 60 * MiB };
const PACKAGES = ['@kubernetes/client-node', '@opentelemetry/sdk-metrics'];
const SYNC_TIMEOUT_MS = 60_000;
const CHILD_TIMEOUT_MS = 120_000;
const FIXTURE_TIMEOUT_MS = 180_000;

interface Memory {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** Resident size of glibc's main malloc arena (the [heap] mapping), 0 where there is no /proc. */
  mallocHeap: number;
}

/** What one `--once` process prints. */
export interface OnceResult {
  ok: boolean;
  failures: string[];
  syncMs: number;
  /** CPU time (user + system) of the process between start() and synced. */
  cpuMs: number;
  /** Main-thread GC pauses between start() and synced. */
  gcMs: number;
  /** The young generation was made resident before the baseline (--warm). */
  warm: boolean;
  /** start() → each reflector's first list done, by resource. */
  reflectorSyncMs: Record<string, number>;
  baseline: Memory;
  /** After the sync, watches open, after full GCs. */
  after: Memory;
  /** Peak RSS of the process (getrusage maxrss) before the sync and at its end. */
  peakRssBefore: number;
  peakRssAtSync: number;
  stats: Array<{ resource: string; objects: number; lists: number; errors: number; synced: boolean }>;
  checks: number;
}

// ---- One measurement (child process) ---------------------------------------------------

/** Rss of the [heap] mapping (glibc's main arena, grown by brk) from /proc/self/smaps. */
function mallocHeapRss(): number {
  try {
    const smaps = fs.readFileSync('/proc/self/smaps', 'utf8');
    const at = smaps.search(/ \[heap\]\n/);
    if (at < 0) return 0;
    const m = /\nRss:\s+(\d+) kB/.exec(smaps.slice(at));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function memory(): Memory {
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, mallocHeap: mallocHeapRss() };
}

/**
 * Short-lived allocations until V8's young generation has grown to its full size and is resident,
 * as it is in an agent that has been running: then the baseline already holds it.
 */
function warmYoungGeneration(): void {
  let batch: Array<{ i: number; s: string }> = [];
  for (let i = 0; i < 2_000_000; i++) {
    batch.push({ i, s: `x${i}` });
    if (batch.length > 20_000) batch = [];
  }
}

/** Full GCs until nothing more is freed, with turns of the event loop for finalizers and freed buffers. */
async function settle(gc: () => void): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function once(fixtureFile: string, warm: boolean): Promise<OnceResult> {
  const gc = (global as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  const fixture = JSON.parse(fs.readFileSync(fixtureFile, 'utf8')) as FixtureDescription;
  const log = new AgentLog('warn');
  const client = KubeClient.load(fixture.kubeconfig);
  const failures: string[] = [];
  let checks = 0;
  const check = (ok: boolean, what: string): void => {
    checks++;
    if (!ok) failures.push(what);
  };

  if (warm) warmYoungGeneration();
  await settle(gc);
  const baseline = memory();
  const peakRssBefore = process.resourceUsage().maxRSS * 1024;
  const gcPauses: Array<{ start: number; duration: number }> = [];
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcPauses.push({ start: e.startTime, duration: e.duration });
  });
  gcObserver.observe({ entryTypes: ['gc'] });

  const metadata = new KubernetesMetadata({
    client,
    nodeName: fixture.options.localNode,
    resolvePeers: true,
    podLabels: ['app'],
    deletedPodGracePeriodMs: 30_000,
    log,
  });
  // Per-reflector timing is a diagnostic only: reach the private list as stats() itself does.
  const reflectors = (metadata as unknown as { reflectors?: Array<{ synced(): Promise<void>; resource?: string }> }).reflectors ?? [];
  const reflectorSyncMs: Record<string, number> = {};
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  metadata.start();
  for (const r of reflectors) void r.synced().then(() => (reflectorSyncMs[r.resource ?? '?'] = Math.round(performance.now() - started)));
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), SYNC_TIMEOUT_MS)));
  const outcome = await Promise.race([metadata.synced().then(() => 'synced' as const), timedOut]);
  const syncEnd = performance.now();
  const syncMs = syncEnd - started;
  const cpu = process.cpuUsage(cpuBefore);
  clearTimeout(timer);
  const peakRssAtSync = process.resourceUsage().maxRSS * 1024;
  if (outcome === 'timeout') failures.push(`not synced after ${SYNC_TIMEOUT_MS} ms: ${JSON.stringify(metadata.stats())}`);

  // Measured with the watches open, as the agent runs.
  await settle(gc);
  const after = memory();
  gcObserver.disconnect();
  const gcMs = gcPauses.filter((p) => p.start >= started && p.start <= syncEnd).reduce((sum, p) => sum + p.duration, 0);

  // ---- Correctness: what the cache holds is what the fixture made.
  const stats = metadata.stats().map((s) => ({ resource: s.resource, objects: s.objects, lists: s.lists, errors: s.errors, synced: s.synced }));
  const expected: Record<string, number> = {
    pods: fixture.expected.localPods,
    'pods (cluster)': fixture.expected.clusterPods,
    services: fixture.expected.services,
    nodes: fixture.expected.nodes,
  };
  for (const [resource, count] of Object.entries(expected)) {
    const s = stats.find((x) => x.resource === resource);
    check(s !== undefined, `no reflector for ${resource}`);
    if (!s) continue;
    check(s.objects === count, `${resource}: ${s.objects} objects, expected ${count}`);
    check(s.synced && s.errors === 0, `${resource}: synced=${s.synced} errors=${s.errors}`);
  }
  check(stats.length === Object.keys(expected).length, `reflectors: ${stats.map((s) => s.resource).join(', ')}`);

  const deploymentKey = `${PEER_PREFIX}${WORKLOAD_NAME_KEYS['deployment']}`;
  for (const p of fixture.samples.pods) {
    const peer = metadata.peerOf(p.ip);
    const a = peer.attributes;
    check(
      peer.kind === 'pod' &&
        a[`${PEER_PREFIX}${ATTR_K8S_POD_NAME}`] === p.name &&
        a[`${PEER_PREFIX}${ATTR_K8S_NAMESPACE_NAME}`] === p.namespace &&
        a[deploymentKey] === p.deployment,
      `peerOf(${p.ip}) = ${JSON.stringify(peer)}, expected pod ${p.namespace}/${p.name} of deployment ${p.deployment}`,
    );
  }
  for (const s of fixture.samples.services) {
    const peer = metadata.peerOf(s.ip);
    check(
      peer.kind === 'service' &&
        peer.attributes[`${PEER_PREFIX}${ATTR_K8S_SERVICE_NAME}`] === s.name &&
        peer.attributes[`${PEER_PREFIX}${ATTR_K8S_NAMESPACE_NAME}`] === s.namespace,
      `peerOf(${s.ip}) = ${JSON.stringify(peer)}, expected service ${s.namespace}/${s.name}`,
    );
  }
  for (const n of fixture.samples.nodes) {
    const peer = metadata.peerOf(n.ip);
    check(
      peer.kind === 'node' && peer.attributes[`${PEER_PREFIX}${ATTR_K8S_NODE_NAME}`] === n.name,
      `peerOf(${n.ip}) = ${JSON.stringify(peer)}, expected node ${n.name}`,
    );
  }
  const external = metadata.peerOf('203.0.113.7');
  check(
    external.kind === 'external' && external.attributes[ATTR_FLOWTEL_PEER_KIND] === 'external',
    `peerOf(203.0.113.7) = ${JSON.stringify(external)}, expected external`,
  );
  check(fixture.samples.localPods.length > 0, 'the fixture put no sample pod on the local node');
  for (const p of fixture.samples.localPods) {
    for (const [id, name] of Object.entries(p.containers)) {
      const a = metadata.podAttributesOf(p.uid, id);
      check(
        a?.[ATTR_K8S_POD_NAME] === p.name && a[ATTR_K8S_CONTAINER_NAME] === name,
        `podAttributesOf(${p.uid}, ${id.slice(0, 12)}…) = ${JSON.stringify(a)}, expected ${p.name}/${name}`,
      );
    }
  }
  const remote = fixture.samples.pods.find((p) => p.nodeName !== fixture.options.localNode);
  if (remote) check(metadata.podAttributesOf(remote.uid) === undefined, `a pod on ${remote.nodeName} has local attributes`);

  metadata.stop();
  return {
    ok: failures.length === 0,
    failures,
    syncMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    gcMs,
    warm,
    reflectorSyncMs,
    baseline,
    after,
    peakRssBefore,
    peakRssAtSync,
    stats,
    checks,
  };
}

// ---- Driver ------------------------------------------------------------------------------

export interface K8sSyncOptions {
  runs: number;
  writeDoc: boolean;
  docFile: string;
  /** Missed targets fail the benchmark (exit status), not only failed checks. */
  strict: boolean;
  /** Baseline with V8's young generation already resident (see warmYoungGeneration). */
  warm: boolean;
  nodeArgs: string[];
  fixtureArgs: string[];
}

function parseDriverArgs(argv: string[]): K8sSyncOptions {
  const o: K8sSyncOptions = {
    runs: 3,
    writeDoc: true,
    docFile: path.join(repoRoot(), 'docs', 'performance.md'),
    strict: false,
    warm: false,
    nodeArgs: [],
    fixtureArgs: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--runs') {
      o.runs = Number(value());
      if (!Number.isInteger(o.runs) || o.runs < 1) throw new Error('--runs: a positive integer');
    } else if (a === '--no-doc') o.writeDoc = false;
    else if (a === '--doc') o.docFile = path.resolve(value());
    else if (a === '--strict') o.strict = true;
    else if (a === '--warm') o.warm = true;
    else if (a === '--node-arg') o.nodeArgs.push(value());
    else if (['--pods', '--nodes', '--namespaces', '--services', '--local-node'].includes(a)) o.fixtureArgs.push(a, value());
    else if (a === '--lean') o.fixtureArgs.push(a);
    else throw new Error(`k8s: unknown argument ${a}`);
  }
  return o;
}

const children = new Set<ChildProcess>();

function killAll(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

/** Kills a child and waits for it (SIGKILL if SIGTERM is not enough). */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

async function startFixture(args: string[]): Promise<{ child: ChildProcess; fixture: FixtureDescription; file: string }> {
  const child = spawn(process.execPath, [path.join(__dirname, 'k8s-api-fixture.js'), ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const lines = readline.createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const fixture = await new Promise<FixtureDescription>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the API fixture was not ready after ${FIXTURE_TIMEOUT_MS} ms`)), FIXTURE_TIMEOUT_MS);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the API fixture exited (${signal ?? code}) before it was ready`));
    });
    lines.on('line', (line) => {
      try {
        const d = JSON.parse(line) as FixtureDescription;
        if (d.ready) {
          clearTimeout(timer);
          resolve(d);
        }
      } catch {
        // not the ready line
      }
    });
  });
  return { child, fixture, file: path.join(fixture.dir, 'fixture.json') };
}

async function runOnce(fixtureFile: string, nodeArgs: string[], warm: boolean): Promise<OnceResult> {
  const args = ['--expose-gc', ...nodeArgs, __filename, '--once', '--fixture', fixtureFile, ...(warm ? ['--warm'] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  children.delete(child);
  const last = out.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as OnceResult;
  } catch {
    throw new Error(`a measurement process exited (${signal ?? code}) without a result${out ? `: ${out.slice(-2000)}` : ''}`);
  }
}

const ms = (v: number) => `${Math.round(v)} ms`;
const mib = (v: number) => `${(v / MiB).toFixed(1)} MiB`;
const range = (s: Summary, f: (v: number) => string) => `${f(s.min)} – ${f(s.max)}`;

export interface K8sSyncSummary {
  ok: boolean;
  targetsMet: boolean;
  results: OnceResult[];
}

export async function runK8sSync(argv: string[]): Promise<K8sSyncSummary> {
  const options = parseDriverArgs(argv);
  const onSignal = (): void => {
    killAll();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', killAll);
  let fixtureChild: ChildProcess | undefined;
  const results: OnceResult[] = [];
  let fixture: FixtureDescription;
  try {
    process.stderr.write('k8s: starting the API fixture…\n');
    const started = await startFixture(options.fixtureArgs);
    fixtureChild = started.child;
    fixture = started.fixture;
    const { expected } = fixture;
    process.stderr.write(
      `k8s: fixture ready in ${fixture.setupMs} ms at ${fixture.server}: ${expected.clusterPods} pods (${expected.localPods} on ${fixture.options.localNode}, ~${fixture.meanPodJsonBytes} B of JSON each), ${expected.services} services, ${expected.nodes} nodes\n`,
    );
    for (let i = 0; i < options.runs; i++) {
      const r = await runOnce(started.file, options.nodeArgs, options.warm);
      results.push(r);
      process.stderr.write(
        `k8s: run ${i + 1}/${options.runs}: synced in ${ms(r.syncMs)}, RSS +${mib(r.after.rss - r.baseline.rss)}, heap +${mib(r.after.heapUsed - r.baseline.heapUsed)}, ${r.checks - r.failures.length}/${r.checks} checks passed\n`,
      );
      for (const f of r.failures) process.stderr.write(`k8s:   FAILED: ${f}\n`);
    }
  } finally {
    if (fixtureChild) await stopChild(fixtureChild);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', killAll);
  }

  const sync = summarize(results.map((r) => r.syncMs));
  const rss = summarize(results.map((r) => r.after.rss - r.baseline.rss));
  const heap = summarize(results.map((r) => r.after.heapUsed - r.baseline.heapUsed));
  const external = summarize(results.map((r) => r.after.external - r.baseline.external));
  const peak = summarize(results.map((r) => r.peakRssAtSync - r.baseline.rss));
  const malloc = summarize(results.map((r) => r.after.mallocHeap - r.baseline.mallocHeap));
  const heapTotal = summarize(results.map((r) => r.after.heapTotal - r.baseline.heapTotal));
  const cpu = summarize(results.map((r) => r.cpuMs));
  const gcPause = summarize(results.map((r) => r.gcMs));
  const syncMet = sync.median < TARGETS.syncMs;
  const rssMet = rss.median < TARGETS.rssGrowthBytes;
  const ok = results.every((r) => r.ok);
  const yes = (met: boolean) => (met ? 'yes' : 'NO');

  const header = ['Metric', 'Median', 'Min – max', 'Target', 'Met'];
  const rows = [
    ['Initial sync (start() → synced())', ms(sync.median), range(sync, ms), `< ${ms(TARGETS.syncMs)}`, yes(syncMet)],
    ['↳ CPU time of the agent process in it', ms(cpu.median), range(cpu, ms), '–', ''],
    ['↳ GC pauses in it (main thread)', ms(gcPause.median), range(gcPause, ms), '–', ''],
    ['RSS growth after sync (post-GC)', mib(rss.median), range(rss, mib), `< ${mib(TARGETS.rssGrowthBytes)}`, yes(rssMet)],
    ['↳ V8 heap used growth (the cache itself)', mib(heap.median), range(heap, mib), '–', ''],
    ['↳ V8 heap committed (heapTotal) growth', mib(heapTotal.median), range(heapTotal, mib), '–', ''],
    ['↳ glibc main arena ([heap]) growth', mib(malloc.median), range(malloc, mib), '–', ''],
    ['↳ external memory (Buffers) growth', mib(external.median), range(external, mib), '–', ''],
    ['Peak RSS during sync, over baseline', mib(peak.median), range(peak, mib), '–', ''],
  ];
  const reflectorNames = Object.keys(results[0]?.reflectorSyncMs ?? {});
  const reflectorRows = reflectorNames.map((name) => {
    const s = summarize(results.map((r) => r.reflectorSyncMs[name] ?? NaN));
    const st = results[0].stats.find((x) => x.resource === name);
    return [name, String(st?.objects ?? '?'), ms(s.median), range(s, ms)];
  });
  const runRows = results.map((r, i) => [
    String(i + 1),
    ms(r.syncMs),
    ms(r.gcMs),
    mib(r.baseline.rss),
    mib(r.after.rss),
    mib(r.after.rss - r.baseline.rss),
    mib(r.after.heapUsed - r.baseline.heapUsed),
    mib(r.peakRssAtSync - r.baseline.rss),
    r.ok ? `${r.checks} passed` : `${r.failures.length}/${r.checks} FAILED`,
  ]);
  const runHeader = ['Run', 'Sync', 'GC pauses', 'RSS before', 'RSS after', 'RSS growth', 'Heap growth', 'Peak RSS growth', 'Checks'];

  const { expected } = fixture;
  const shape = `${expected.clusterPods.toLocaleString('en-US')} pods on ${expected.nodes} nodes in ${fixture.options.namespaces} namespaces (${expected.localPods} on the agent's node), ${expected.services.toLocaleString('en-US')} services, ${expected.nodes} nodes; ~${fixture.meanPodJsonBytes.toLocaleString('en-US')} bytes of JSON per pod`;
  const missed = [...(syncMet ? [] : ['sync time']), ...(rssMet ? [] : ['RSS growth'])];
  const verdict = !ok ? 'CORRECTNESS CHECKS FAILED' : missed.length ? `TARGET MISSED: ${missed.join(', ')}` : 'all targets met';
  const baselineKind = options.warm ? 'warm baseline (young generation resident before it)' : 'cold baseline';
  console.log(`\n${TITLE}: ${shape}; ${results.length} run${results.length === 1 ? '' : 's'}, ${baselineKind} — ${verdict}\n`);
  console.log(table(header, rows, false));
  console.log(`\nPer reflector (start() → its first list done):\n${table(['Reflector', 'Objects', 'Median', 'Min – max'], reflectorRows, false)}`);
  console.log(`\nRuns:\n${table(runHeader, runRows, false)}\n`);

  if (options.writeDoc) {
    const env = environment(PACKAGES);
    const extra = [...(options.warm ? ['--warm'] : []), ...options.nodeArgs.flatMap((a) => ['--node-arg', a]), ...options.fixtureArgs];
    const command = `npx tsc -p tsconfig.json && npm run bench -- k8s${options.runs !== 3 ? ` --runs ${options.runs}` : ''}${extra.length ? ` ${extra.join(' ')}` : ''}`;
    const doc = [
      environmentMarkdown(env),
      '',
      `Workload: the agent-side cache (\`KubernetesMetadata\`, \`resolvePeers: true\`, node \`${fixture.options.localNode}\`: four reflectors, local pods, all pods, services, nodes) against the test API server (\`src/testbed/k8s-api-server.ts\`, HTTPS, in its own process) holding ${shape}. Each run is a fresh \`node --expose-gc\` process: ${options.warm ? "short-lived allocations until V8's young generation is resident (`--warm`), " : ''}full GC, baseline \`process.memoryUsage()\`, \`start()\`, await \`synced()\`, full GC, measure with the watches open. Every run also checks the object counts in \`stats()\` and that \`peerOf()\` names sample pod, ClusterIP and node addresses correctly.`,
      '',
      `Result: **${verdict}** (targets from the issue: initial sync < 5 s, RSS growth < 60 MiB; judged on the median of ${results.length} runs).`,
      '',
      table(header, rows, true),
      '',
      'Per reflector, start() → its first (paged) list done:',
      '',
      table(['Reflector', 'Objects', 'Median', 'Min – max'], reflectorRows, true),
      '',
      'Runs:',
      '',
      table(runHeader, runRows, true),
      '',
      'Rerun (from the repository root; the benchmark runs the compiled tree):',
      '',
      '```sh',
      command,
      '```',
      '',
      "Options: `--runs N`, `--no-doc` (print only), `--strict` (exit 1 when a target is missed), `--warm` (make V8's young generation resident before the baseline, as in an agent that has been running), `--node-arg ARG` (passed to each measured process, e.g. `--node-arg --cpu-prof --node-arg --cpu-prof-dir=/tmp/prof`), and the fixture's `--pods`, `--nodes`, `--namespaces`, `--services`, `--lean` (pods exactly as the testbed builders make them, without service-account volume, tolerations and managedFields).",
    ].join('\n');
    updateSection(options.docFile, TITLE, SECTION, doc);
    console.log(`wrote ${path.relative(process.cwd(), options.docFile)} (section "${TITLE}")`);
  }
  return { ok, targetsMet: syncMet && rssMet, results };
}

/** Exit status of a `runK8sSync` for the command line. */
export function exitStatus(summary: K8sSyncSummary, strict: boolean): number {
  if (!summary.ok) return 1;
  return strict && !summary.targetsMet ? 1 : 0;
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--once') {
    const at = argv.indexOf('--fixture');
    const file = at >= 0 ? argv[at + 1] : undefined;
    if (!file) throw new Error('--once needs --fixture FILE (written by k8s-api-fixture.js)');
    const result = await once(file, argv.includes('--warm'));
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return result.ok ? 0 : 1;
  }
  const summary = await runK8sSync(argv);
  return exitStatus(summary, argv.includes('--strict'));
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    // Exit at once: the aborted watch sockets of --once need not close politely.
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`k8s-sync: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
