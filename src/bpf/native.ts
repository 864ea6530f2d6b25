/**
 * Typed view of the native addon (native/). The addon exposes mechanisms
 * only; everything here is a one-to-one declaration of what it exports.
 */
import path from 'node:path';

export interface MemberLayout {
  offset: number;
  size: number;
}

export interface StructLayoutInfo {
  size: number;
  /** Nested members flattened with dotted names ("tuple.saddr"). */
  members: Record<string, MemberLayout>;
}

export interface MapInfo {
  name: string;
  fd: number;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  perCpu: boolean;
  /** Bytes per value in batch results (per-CPU values: rounded size × possible CPUs). */
  valueStride: number;
}

export interface MapRows {
  count: number;
  keys: Buffer;
  values: Buffer;
  keySize: number;
  valueStride: number;
}

export interface NativeBpfObject {
  setGlobal(name: string, value: Buffer): void;
  setProgramAutoload(name: string, enabled: boolean): void;
  setMapAutocreate(name: string, enabled: boolean): void;
  setMapMaxEntries(name: string, entries: number): void;
  reuseMapFd(name: string, fd: number): void;
  load(): void;
  /** Attaches by section (tracepoint/, tp_btf/, raw_tp/); returns a link id. */
  attach(program: string): number;
  attachCgroup(program: string, cgroupPath: string): number;
  detach(linkId: number): void;
  /** Attaches an iterator program (SEC("iter/...")), over the elements of `mapName` for map iterators; returns a link id. */
  attachIter(program: string, mapName?: string): number;
  /** Runs an attached iterator once; returns everything its program wrote. */
  readIter(linkId: number): Buffer;
  mapInfo(name: string): MapInfo;
  mapReadAll(name: string): MapRows;
  /**
   * Walks every row through the given Buffers, calling onBatch(count) after
   * each fill (rows 0..count-1 are valid until onBatch returns); returns the
   * rows read in all. Prefer MapRowsReader.forEach.
   */
  mapReadEach(name: string, keys: Buffer, values: Buffer, onBatch: (count: number) => void): number;
  mapDeleteKeys(name: string, keys: Buffer): number;
  /** Writes one entry of a non-per-CPU map. */
  mapUpdate(name: string, key: Buffer, value: Buffer): void;
  objectEnum(name: string): Record<string, number>;
  structLayout(name: string): StructLayoutInfo;
  programNames(): Array<{ name: string; section: string }>;
  /** Every map of the object, its global-data maps (.bss, .rodata) included. */
  mapNames(): string[];
  /** Runs of a loaded program the kernel skipped because it was already running on that CPU (bpf_prog_info.recursion_misses). */
  programRecursionMisses(name: string): number;
  /** Runs a loaded program once with no input (BPF_PROG_TEST_RUN) and returns its return value. */
  programTestRun(name: string): number;
  close(): void;
}

export interface RingBufferStats {
  deliveredRecords: number;
  droppedRecords: number;
  deliveredBatches: number;
  /** Batches handed to JS and not yet done, and their bytes (bounded by maxQueuedBatches and maxQueuedBytes). */
  queuedBatches: number;
  queuedBytes: number;
  pollErrors: number;
  lastPollErrno: number;
  running: boolean;
}

export interface RingBufferOptions {
  /** Batches JS may be behind by; then records wait in the kernel ring (whose overflow the BPF side counts). */
  maxQueuedBatches?: number;
  /** Bytes JS may be behind by (native default 16 MiB); one batch goes out regardless when JS has none. */
  maxQueuedBytes?: number;
  pollTimeoutMs?: number;
  maxBatchBytes?: number;
}

export interface NativeRingBufferConsumer {
  stats(): RingBufferStats;
  stop(): void;
  /** JS has handled a batch of this many bytes: it no longer counts against the queue bounds. */
  done(bytes: number): void;
}

export interface NativeAddon {
  BpfObject: new (objectPath: string) => NativeBpfObject;
  RingBufferConsumer: new (mapFd: number, onBatch: (batch: Buffer, records: number) => void, options?: RingBufferOptions) => NativeRingBufferConsumer;
  kernelEnum(name: string): Record<string, number>;
  kernelEnumWithMember(member: string): Record<string, number>;
  /** The C types of the arguments a tp_btf program of this tracepoint gets on this kernel; null if the kernel has no such tracepoint. */
  kernelTracepointArgs(name: string): string[] | null;
  /** Whether the kernel's BTF has a function of this name (kfuncs are callable only if so). */
  kernelHasFunction(name: string): boolean;
  /** The member names of a kernel struct (those of its anonymous struct and union members included); null if the kernel has no such struct. */
  kernelStructMembers(name: string): string[] | null;
  possibleCpus(): number;
  /**
   * Frees the cached vmlinux BTF (a later kernelEnum parses it again) and
   * calls malloc_trim(0), giving what start-up parsed and freed back to the
   * OS; true if glibc released any memory.
   */
  releaseFreedMemory(): boolean;
  /** Bytes of the C heap in use (glibc's mallinfo2: allocated chunks of every arena, and mmapped ones). */
  nativeHeapInUse(): number;
  libbpfVersion: string;
}

let addon: NativeAddon | undefined;

/** Loads the addon once; the path is relative to the package root. */
export function nativeAddon(): NativeAddon {
  if (!addon) {
    const file = path.join(packageRoot(), 'native', 'build', 'Release', 'flowtel_bpf.node');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    addon = require(file) as NativeAddon;
  }
  return addon;
}

/** The package root, whether running from src via ts or from dist/. */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (path.basename(dir) === 'dist') return path.dirname(dir);
    const parent = path.dirname(dir);
    if (parent === dir) return path.resolve(__dirname, '..', '..');
    dir = parent;
  }
}
