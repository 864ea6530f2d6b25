/**
 * Every probe group loaded, started, collected and unloaded again and again
 * in one process, as monitoring policies will do while the agent runs: after
 * each unload nothing the group registered may remain (series sources, event
 * handlers), and over the cycles neither file descriptors (programs, maps,
 * links, ring buffers) nor memory may grow.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import { loadGroup, type RunningGroup } from '../../src/agent/group-loader';
import { AgentLog } from '../../src/util/log';
import { kernelFactsFrom } from '../../src/bpf/hooks';
import { openJiffiesReader } from '../../src/bpf/kernel-clock';
import { detectKernelHz } from '../../src/bpf/kernel-hz';
import { BpfRuntime } from '../../src/bpf/runtime';
import { defaultConfig, type FlowtelConfig } from '../../src/config/config';
import { CgroupAttribution } from '../../src/k8s/attribution';
import { CgroupIndex } from '../../src/k8s/cgroup-index';
import { NetnsIndex } from '../../src/k8s/netns-index';
import { PROBE_GROUPS } from '../../src/probes/registry';
import type { SeriesSnapshot } from '../../src/tables/series';
import type { SharedProbeContext } from '../../src/probes/types';
import { packageRoot } from '../../src/bpf/native';
import { cgroupRoot, requireKernel } from '../support/kernel';
import { groupOnThisKernel } from '../support/kernel-table';

const CYCLES = Number(process.env.FLOWTEL_GROUP_CYCLES ?? 100);
/** Cycles before the first measurement: allocators and V8 reach their working size. */
const WARM_UP = 10;
/**
 * Memory in use the cycles after warm-up may add, JS heap and C heap each: a leak of 1 KiB per load would
 * add over 500 KiB. Resident memory is only reported: V8 keeps the heap pages it committed while the
 * cycles allocated, and glibc its arenas, neither of which is a leak (both stop growing).
 */
const MAX_HEAP_GROWTH_BYTES = 512 << 10;

describe('probe groups loaded and unloaded in one process (real kernel)', function () {
  this.timeout(900_000);

  before(function () {
    requireKernel(this);
  });

  it(`${CYCLES} cycles of every group that runs here leave no handler, series source, fd or memory behind`, async () => {
    const config: FlowtelConfig = { ...defaultConfig(packageRoot()), cgroupRoot: cgroupRoot() };
    // Small maps: the cycles test what is registered and released, not how much the kernel allocates.
    let probes = config.probes;
    for (const entry of PROBE_GROUPS) probes = entry.withTrialConfig(probes, 256);
    const small: FlowtelConfig = { ...config, probes };
    const runnable = PROBE_GROUPS.filter((g) => groupOnThisKernel(g.name).state !== 'unsupported');
    assert.ok(runnable.length > 0, 'no probe group runs on this kernel');

    const runtime = new BpfRuntime({ objectDir: config.bpfObjectDir, ringBufferBytes: 1 << 16, maxQueuedBatches: 4 });
    const sources = new Set<() => SeriesSnapshot>();
    const index = new CgroupIndex({ root: small.cgroupRoot });
    index.rescan();
    const logged = new PassThrough();
    const logLines: string[] = [];
    logged.on('data', (d: Buffer) => logLines.push(d.toString()));
    const shared: SharedProbeContext = {
      events: { offer: () => undefined },
      attribution: new CgroupAttribution(index, 'cycle-node', new NetnsIndex()),
      runtime,
      log: new AgentLog('warn', logged),
      cgroupGracePeriodMs: 0,
      series: {
        register(collect) {
          sources.add(collect);
          return () => sources.delete(collect);
        },
      },
    };
    const kernel = kernelFactsFrom(runtime.native);
    const node = { kernelHz: await detectKernelHz(() => openJiffiesReader(config.bpfObjectDir)), cgroupRoot: small.cgroupRoot };

    let atWarmUp: Usage | undefined;
    const started = Date.now();
    try {
      for (let cycle = 1; cycle <= CYCLES; cycle++) {
        const running: RunningGroup[] = [];
        for (const entry of runnable) {
          const { running: group, status } = loadGroup(entry, small, runtime, node, kernel, shared);
          assert.ok(group, `cycle ${cycle}: ${entry.name} did not load: ${status.state} ${status.reasons.join('; ')}`);
          running.push(group);
        }
        runtime.startEvents();
        assert.ok(sources.size >= runnable.length, `cycle ${cycle}: ${sources.size} series sources for ${runnable.length} groups`);
        // Each source reads its kernel maps, as a collection would.
        for (const collect of sources) collect();
        for (const group of running) group.unload();
        assert.equal(sources.size, 0, `cycle ${cycle}: series sources left after unload`);
        assert.equal(runtime.eventHandlerCount, 0, `cycle ${cycle}: event handlers left after unload`);
        if (cycle === WARM_UP) atWarmUp = await usage(runtime);
      }
    } finally {
      runtime.close();
    }
    const atEnd = await usage(runtime);
    assert.ok(atWarmUp);
    const perLoad = (Date.now() - started) / (CYCLES * runnable.length);
    process.stdout.write(
      `      ${runnable.map((g) => g.name).join(', ')}: ${CYCLES} cycles, ${perLoad.toFixed(1)} ms per load; ` +
        `fds ${describeFds(atWarmUp.fds)} -> ${describeFds(atEnd.fds)}; JS heap ${mib(atWarmUp.jsHeap)} -> ${mib(atEnd.jsHeap)} MiB, ` +
        `C heap ${mib(atWarmUp.nativeHeap)} -> ${mib(atEnd.nativeHeap)} MiB, RSS ${mib(atWarmUp.rss)} -> ${mib(atEnd.rss)} MiB\n`,
    );
    assert.deepEqual(atEnd.fds, atWarmUp.fds, 'open file descriptors by kind, after warm-up and at the end');
    assert.equal(
      Object.keys(atEnd.fds).filter((k) => k.startsWith('bpf')).length,
      0,
      `BPF fds left open after every group unloaded: ${describeFds(atEnd.fds)}`,
    );
    assert.ok(
      atEnd.jsHeap - atWarmUp.jsHeap <= MAX_HEAP_GROWTH_BYTES,
      `the JS heap grew ${mib(atEnd.jsHeap - atWarmUp.jsHeap)} MiB over ${CYCLES - WARM_UP} cycles`,
    );
    assert.ok(
      atEnd.nativeHeap - atWarmUp.nativeHeap <= MAX_HEAP_GROWTH_BYTES,
      `the C heap grew ${mib(atEnd.nativeHeap - atWarmUp.nativeHeap)} MiB over ${CYCLES - WARM_UP} cycles`,
    );
    assert.deepEqual(
      logLines.filter((l) => !/runs degraded|not a drop reason/.test(l)),
      [],
      'warnings while cycling',
    );
  });
});

interface Usage {
  /** Open file descriptors by what they are (bpf-prog, bpf-map, bpf_link, socket, ...). */
  fds: Record<string, number>;
  /** V8's heap in use after a full GC. */
  jsHeap: number;
  /** The C heap in use (libbpf, the addon). */
  nativeHeap: number;
  rss: number;
}

/** Open fds and resident memory, after a full GC and with freed native memory given back, as the agent does after start-up. */
async function usage(runtime: BpfRuntime): Promise<Usage> {
  // Buffers of the addon are freed by finalizers that run after the GC, on a later turn of the loop.
  for (let i = 0; i < 3; i++) {
    collectGarbage();
    await new Promise((resolve) => setImmediate(resolve));
  }
  runtime.native.releaseFreedMemory();
  const fds: Record<string, number> = {};
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = fs.readlinkSync(path.join('/proc/self/fd', fd));
    } catch {
      continue; // the directory's own fd, closed by now
    }
    const kind = target.startsWith('anon_inode:')
      ? target.slice('anon_inode:'.length).replace(/^\[|\]$/g, '')
      : target.replace(/:\[\d+\]$/, '').replace(/^\/.*/, 'file');
    fds[kind] = (fds[kind] ?? 0) + 1;
  }
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) * 1024;
  return { fds, jsHeap: process.memoryUsage().heapUsed, nativeHeap: runtime.native.nativeHeapInUse(), rss };
}

function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

function describeFds(fds: Record<string, number>): string {
  return Object.entries(fds)
    .sort()
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}

function mib(bytes: number): string {
  return (bytes / (1 << 20)).toFixed(1);
}
