/**
 * Owns the loaded BPF objects of all probe groups. The first object loaded
 * creates the shared maps (the one ring buffer and the loss counters); every
 * later object reuses their fds, so user space drains one ring and reads one
 * loss table whatever the number of groups.
 */
import path from 'node:path';
import { EventBatches } from './event-batches';
import { chosenProgramNames, kernelFactsFrom, planHooks, unchosenPrograms, type ChosenProgram, type HookSpec } from './hooks';
import { nativeAddon, type NativeAddon, type NativeBpfObject, type NativeRingBufferConsumer } from './native';
import type { LoadedObject, ObjectNames, OpenedObject } from './object-names';
import { u64 } from './le-bytes';
import { mapMemlockBytes, type MapMemory } from './map-memory';
import { StructReader, sumPerCpu } from './struct-reader';

export const SHARED_RING_MAP = 'flowtel_events';
export const SHARED_LOSS_MAP = 'flowtel_losses';
const SHARED_MAPS = [SHARED_RING_MAP, SHARED_LOSS_MAP] as const;

/** `N`: the names the object defines (src/bpf/objects.generated.ts), which tsc checks each use against. */
export interface ProbeObjectSpec<N extends ObjectNames = ObjectNames> {
  group: string;
  /** File name under the BPF object directory, e.g. tcp_retransmits.bpf.o. */
  objectFile: N['file'];
  /** Before load: set globals, resize maps. */
  configure(object: OpenedObject<N>): void;
  /** The group's hooks, each with its program variants; the chosen ones load, by section when the hook says so, in order. */
  hooks: readonly HookSpec<N['programs']>[];
  /** After load, before attach: fill maps the programs read (filters). */
  afterLoad?(object: LoadedObject<N>): void;
  /** Attaches programs that need more than their section (cgroup_skb at a cgroup), of those loaded; returns link ids. */
  attachCustom?(object: { attachCgroup(program: N['programs'], cgroupPath: string): number }, loaded: ReadonlySet<N['programs']>): number[];
}

export interface LoadedProbeObject<N extends ObjectNames = ObjectNames> {
  readonly group: string;
  readonly object: LoadedObject<N>;
  readonly linkIds: number[];
  /** The programs attached by section (tracing programs: the ones the kernel can skip as recursive). */
  readonly programs: readonly AttachedProgram[];
  /** Every program loaded: the chosen variants, attached by section or not. */
  readonly loadedPrograms: ReadonlySet<N['programs']>;
}

/** What the runtime keeps of a loaded group: the whole native object, which only it may detach and close. */
interface LoadedEntry {
  readonly group: string;
  readonly object: NativeBpfObject;
  readonly linkIds: number[];
  readonly programs: readonly AttachedProgram[];
}

export interface AttachedProgram {
  /** The name the agent's metrics give it: its hook's first variant, whichever variant runs. */
  name: string;
  /** The variant loaded on this kernel. */
  program: string;
}

/** The kernel cannot run a hook of the group: no program variant's requirements hold. */
export class KernelUnsupportedError extends Error {
  constructor(
    readonly group: string,
    readonly reason: string,
  ) {
    super(`probe group ${group} is not supported by this kernel: ${reason}`);
  }
}

/** Called for every ring-buffer record; `offset` is where the record starts in `buffer`. */
export type EventHandler = (buffer: Buffer, offset: number, size: number) => void;

export interface LossTotals {
  ringBufferFull: number;
  mapFull: number;
  rateLimited: number;
}

export interface RuntimeOptions {
  objectDir: string;
  ringBufferBytes: number;
  maxQueuedBatches: number;
  /** Bytes of batches JS may be behind by (native default 16 MiB). */
  maxQueuedBytes?: number;
  /** Bytes a batch may reach before it is handed over regardless (native default 256 KiB). */
  maxBatchBytes?: number;
  /** The longest JS works on events before it lets timers and sockets run (default 20 ms). */
  eventSliceMs?: number;
  addon?: NativeAddon;
}

export class BpfRuntime {
  private readonly addon: NativeAddon;
  private readonly loaded = new Map<string, LoadedEntry>();
  private readonly handlers = new Map<number, EventHandler>();
  /** fd of each shared map, held through the object that created it or took it over; undefined before the first load. */
  private sharedFds: Map<string, number> | undefined;
  private consumer: NativeRingBufferConsumer | undefined;
  private batches: EventBatches | undefined;
  private header: StructReader<'kind' | 'size'> | undefined;
  private lossIndex: { ringBufferFull: number; mapFull: number; rateLimited: number } | undefined;
  private unhandled = 0;
  /** Recursion misses of programs whose group was unloaded, so that each program's exported total never goes down. */
  private readonly retiredRecursionMisses = new Map<string, number>();
  private warnedHandlerFailure = false;
  /** Read once, while start-up holds the kernel's BTF (the agent frees it once the groups are loaded). */
  private readonly countsRecursionMisses: boolean;
  private readonly cpus: number;

  constructor(private readonly options: RuntimeOptions) {
    this.addon = options.addon ?? nativeAddon();
    this.cpus = this.addon.possibleCpus();
    this.countsRecursionMisses = kernelCountsRecursionMisses(this.addon);
  }

  get possibleCpus(): number {
    return this.cpus;
  }

  get native(): NativeAddon {
    return this.addon;
  }

  /**
   * Opens, configures, loads and attaches one group; on any failure nothing of it stays loaded. `chosen`
   * is the program variant of each hook (planHooks); without it, the runtime chooses from this kernel's
   * BTF and throws KernelUnsupportedError when a hook has no variant this kernel can run.
   */
  load<N extends ObjectNames>(spec: ProbeObjectSpec<N>, chosen?: readonly ChosenProgram[]): LoadedProbeObject<N> {
    if (this.loaded.has(spec.group)) throw new Error(`probe group ${spec.group} is already loaded`);
    const programs = chosen ?? this.choosePrograms(spec);
    const object = new this.addon.BpfObject(path.join(this.options.objectDir, spec.objectFile));
    const linkIds: number[] = [];
    const loadedPrograms = new Set(chosenProgramNames(programs)) as ReadonlySet<N['programs']>;
    const bySection = programs.flatMap(({ hook, variant }) => (hook.attachBySection && variant.program !== null ? [{ hook, program: variant.program }] : []));
    try {
      for (const program of unchosenPrograms(spec.hooks, programs)) object.setProgramAutoload(program, false);
      spec.configure(object);
      object.setGlobal('flowtel_ringbuf_wakeup_bytes', u64(ringWakeupBytes(this.options.ringBufferBytes)));
      if (this.sharedFds === undefined) {
        object.setMapMaxEntries(SHARED_RING_MAP, this.options.ringBufferBytes);
      } else {
        for (const [name, fd] of this.sharedFds) object.reuseMapFd(name, fd);
      }
      object.load();
      spec.afterLoad?.(object);
      for (const { hook, program } of bySection) linkIds.push(attachProgram(object, hook, program));
      if (spec.attachCustom) linkIds.push(...spec.attachCustom(object, loadedPrograms));
    } catch (err) {
      object.close();
      throw err;
    }
    if (this.sharedFds === undefined) this.adoptSharedMaps(object);
    const entry = {
      group: spec.group,
      object,
      linkIds,
      programs: bySection.map(({ hook, program }) => ({ name: hook.program, program })),
      loadedPrograms,
    };
    this.loaded.set(spec.group, entry);
    return entry;
  }

  /** The program variant of each hook that this kernel can run. */
  choosePrograms(spec: Pick<ProbeObjectSpec, 'group' | 'hooks'>): ChosenProgram[] {
    const plan = planHooks(spec.hooks, kernelFactsFrom(this.addon));
    if (!plan.supported) throw new KernelUnsupportedError(spec.group, plan.reason);
    return plan.programs;
  }

  /** Detaches every link of a group and closes its object. */
  unload(group: string): void {
    const entry = this.loaded.get(group);
    if (!entry) return;
    this.loaded.delete(group);
    for (const id of entry.linkIds) entry.object.detach(id);
    this.retireRecursionMisses(entry);
    const next = this.loaded.values().next().value as LoadedEntry | undefined;
    if (next) {
      // Every object holds its own fd of the shared maps: hand ownership on.
      this.sharedFds = sharedMapFds(next.object);
    } else {
      // Last group gone: the next load creates fresh shared maps and a new consumer.
      this.consumer?.stop();
      this.consumer = undefined;
      this.sharedFds = undefined;
    }
    entry.object.close();
  }

  /**
   * Registers the handler for an event kind (value of enum flowtel_event_kind); returns the function that
   * removes it (a no-op once another handler took the kind).
   */
  onEvent(kind: number, handler: EventHandler): () => void {
    if (this.handlers.has(kind)) throw new Error(`internal: event kind ${kind} already has a handler`);
    this.handlers.set(kind, handler);
    return () => {
      if (this.handlers.get(kind) === handler) this.handlers.delete(kind);
    };
  }

  /** The kernel memory of every map of the loaded objects; the shared maps (one kernel map, an fd in each object) once. */
  mapMemory(): MapMemory[] {
    const out: MapMemory[] = [];
    const sharedSeen = new Set<string>();
    for (const entry of this.loaded.values()) {
      for (const map of entry.object.mapNames()) {
        const shared = (SHARED_MAPS as readonly string[]).includes(map);
        if (shared && sharedSeen.has(map)) continue;
        const { fd, perCpu, maxEntries, valueSize } = entry.object.mapInfo(map);
        // A map the object did not create (autocreate off) has no fd.
        const bytes = fd >= 0 ? mapMemlockBytes(fd) : undefined;
        if (bytes === undefined) continue;
        if (shared) sharedSeen.add(map);
        out.push({ group: shared ? undefined : entry.group, map, bytes, perCpu, maxEntries, valueSize });
      }
    }
    return out;
  }

  /** How many event kinds have a handler (a leak check for groups loaded and unloaded in one process). */
  get eventHandlerCount(): number {
    return this.handlers.size;
  }

  /** Starts draining the shared ring buffer (after the first load). */
  startEvents(): void {
    const ringFd = this.sharedFds?.get(SHARED_RING_MAP);
    if (this.consumer || ringFd === undefined) return;
    let consumer: NativeRingBufferConsumer | undefined;
    // Tied to this consumer: after a restart, the old batches are done against the old one.
    const batches = new EventBatches(
      (batch, start, size) => this.dispatch(batch, start, size),
      (bytes) => consumer?.done(bytes),
      this.options.eventSliceMs ?? 20,
    );
    consumer = new this.addon.RingBufferConsumer(ringFd, (batch, records) => batches.push(batch, records), {
      maxQueuedBatches: this.options.maxQueuedBatches,
      ...(this.options.maxQueuedBytes !== undefined ? { maxQueuedBytes: this.options.maxQueuedBytes } : {}),
      ...(this.options.maxBatchBytes !== undefined ? { maxBatchBytes: this.options.maxBatchBytes } : {}),
    });
    this.consumer = consumer;
    this.batches = batches;
  }

  /** Handles every record already handed to JS, without yielding: at stop, before the final export. */
  drainEvents(): void {
    this.batches?.drain();
  }

  ringStats() {
    return this.consumer?.stats();
  }

  /** Records no handler took (an unknown kind, a handler that threw); exported as lost, should stay 0. */
  get unhandledEvents(): number {
    return this.unhandled;
  }

  /** Kernel-side losses summed over CPUs (running totals). */
  readLosses(): LossTotals {
    const any = this.loaded.values().next().value as LoadedEntry | undefined;
    if (!any || !this.lossIndex) return { ringBufferFull: 0, mapFull: 0, rateLimited: 0 };
    const rows = any.object.mapReadAll(SHARED_LOSS_MAP);
    const totals = new Map<number, number>();
    for (let i = 0; i < rows.count; i++) {
      const index = rows.keys.readUInt32LE(i * rows.keySize);
      totals.set(index, sumPerCpu(rows.values, i * rows.valueStride, this.cpus, rows.valueStride / this.cpus));
    }
    return {
      ringBufferFull: totals.get(this.lossIndex.ringBufferFull) ?? 0,
      mapFull: totals.get(this.lossIndex.mapFull) ?? 0,
      rateLimited: totals.get(this.lossIndex.rateLimited) ?? 0,
    };
  }

  /**
   * Runs of each tracing program the kernel skipped because the program was
   * already running on that CPU (running totals by program name, including
   * programs of groups unloaded since). Only programs attached by section are
   * asked: the cgroup_skb programs run without that check and are never
   * skipped.
   */
  readRecursionMisses(): Map<string, number> {
    if (!this.kernelCountsRecursionMisses) return new Map();
    const totals = new Map(this.retiredRecursionMisses);
    for (const entry of this.loaded.values()) {
      for (const { name, program } of entry.programs) totals.set(name, (totals.get(name) ?? 0) + entry.object.programRecursionMisses(program));
    }
    return totals;
  }

  /**
   * Whether the kernel counts the runs it skips (bpf_prog_info.recursion_misses, 5.12+). Before, there is no
   * count to export: no program_skipped series (kernels before 6.1 do not skip raw-tracepoint runs anyway).
   */
  get kernelCountsRecursionMisses(): boolean {
    return this.countsRecursionMisses;
  }

  /** Keeps the skipped runs of an object about to close; a failure to read them must not keep it loaded. */
  private retireRecursionMisses(entry: LoadedEntry): void {
    if (!this.kernelCountsRecursionMisses) return;
    for (const { name, program } of entry.programs) {
      try {
        const total = (this.retiredRecursionMisses.get(name) ?? 0) + entry.object.programRecursionMisses(program);
        this.retiredRecursionMisses.set(name, total);
      } catch (err) {
        process.emitWarning(`skipped runs of ${program} are not kept past its unload: ${(err as Error).message}`);
      }
    }
  }

  /** Detaches every program and stops the consumer (queued batches still arrive); maps stay readable. */
  detachAll(): void {
    for (const entry of this.loaded.values()) {
      for (const id of entry.linkIds) entry.object.detach(id);
      entry.linkIds.length = 0;
    }
    this.consumer?.stop();
  }

  /** Stops the consumer (queued batches still arrive) and unloads every group. */
  close(): void {
    this.consumer?.stop();
    this.batches?.drain();
    this.consumer = undefined;
    this.batches = undefined;
    for (const group of [...this.loaded.keys()]) this.unload(group);
  }

  private adoptSharedMaps(object: NativeBpfObject): void {
    this.sharedFds = sharedMapFds(object);
    this.header = new StructReader('flowtel_event_header', object.structLayout('flowtel_event_header'), ['kind', 'size']);
    const reasons = object.objectEnum('flowtel_loss_reason');
    this.lossIndex = {
      ringBufferFull: reasons.FLOWTEL_LOSS_RINGBUF_FULL,
      mapFull: reasons.FLOWTEL_LOSS_MAP_FULL,
      rateLimited: reasons.FLOWTEL_LOSS_RATE_LIMITED,
    };
  }

  private dispatch(batch: Buffer, start: number, size: number): void {
    const header = this.header as StructReader<'kind' | 'size'>;
    const handler = this.handlers.get(header.uint(batch, start, 'kind'));
    if (!handler) {
      this.unhandled++;
      return;
    }
    try {
      handler(batch, start, size);
    } catch (err) {
      this.unhandled++;
      // Once: a broken handler fails for every event, and the count is exported anyway.
      if (!this.warnedHandlerFailure) process.emitWarning(`event handler failed: ${(err as Error).message}`);
      this.warnedHandlerFailure = true;
    }
  }
}

/**
 * Bytes waiting in the ring that wake the consumer: 1/64 of the ring. Under a
 * flood that is one wakeup per few hundred records instead of one per record;
 * at low rates records wait for the consumer's poll timeout (100 ms), well
 * inside an export interval.
 */
export function ringWakeupBytes(ringBufferBytes: number): number {
  return Math.max(1, Math.floor(ringBufferBytes / 64));
}

/** Whether the running kernel counts a program's skipped runs: bpf_prog_info.recursion_misses (5.12+). */
export function kernelCountsRecursionMisses(addon: Pick<NativeAddon, 'kernelStructMembers'>): boolean {
  return addon.kernelStructMembers('bpf_prog_info')?.includes('recursion_misses') ?? false;
}

/** Attaches a program by its section; a failure names the hook, which a variant's program name does not always show. */
function attachProgram(object: NativeBpfObject, hook: HookSpec, program: string): number {
  try {
    return object.attach(program);
  } catch (err) {
    if (err instanceof Error) err.message = `${hook.hook}: ${err.message}`;
    throw err;
  }
}

function sharedMapFds(object: NativeBpfObject): Map<string, number> {
  return new Map(SHARED_MAPS.map((name) => [name, object.mapInfo(name).fd]));
}
