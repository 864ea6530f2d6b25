/**
 * Kernel address → "function+0xoffset" from /proc/kallsyms, for drop log
 * records. Resolved addresses are cached. The first address not in the cache
 * reads the text symbols (about 120,000 names, 3 MB) into a compact sorted
 * table, and later misses are a binary search in it. The table is released
 * after a minute without misses, so an agent that has met its node's few
 * dozen drop places holds only their names.
 *
 * Why a table and not one pass per miss: a pass costs 150–250 ms of CPU (the
 * kernel formats the file on every read), and drops at new places come in
 * bursts. Under bulk TCP the per-miss passes were most of the agent's CPU.
 * Addresses read as 0 (kptr_restrict) leave locations as hex.
 */
import fs from 'node:fs';

/** Distinct drop places cached; a kernel with more only loses the cache. */
const MAX_CACHED_LOCATIONS = 4096;
/** How long the symbol table outlives its last use. */
const TABLE_TTL_MS = 60_000;
const CHUNK_BYTES = 256 * 1024;
const HIDDEN_ADDRESS = '0000000000000000';

export class KernelSymbols {
  private readonly cache = new Map<bigint, string>();
  private readable = false;
  private table: SymbolTable | undefined;
  private releaseTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly file = '/proc/kallsyms',
    private readonly tableTtlMs = TABLE_TTL_MS,
  ) {}

  /**
   * Checks, when the group starts, that the file can be read and shows addresses: the first text symbol
   * has a non-zero one (the file can start with hundreds of absolute per-CPU symbols at 0, as on 6.1).
   */
  load(): void {
    this.readable = false;
    try {
      const fd = fs.openSync(this.file, 'r');
      try {
        const chunk = Buffer.alloc(CHUNK_BYTES);
        let carried = '';
        for (let n; (n = fs.readSync(fd, chunk, 0, chunk.length, null)) > 0;) {
          const lines = (carried + chunk.toString('latin1', 0, n)).split('\n');
          carried = lines.pop() ?? '';
          const text = lines.find((line) => /^[0-9a-f]{16} [tT] /.test(line));
          if (text !== undefined) {
            this.readable = !text.startsWith(HIDDEN_ADDRESS);
            return;
          }
        }
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      // unreadable: locations stay hex
    }
  }

  symbolize(address: bigint): string {
    let text = this.cache.get(address);
    if (text === undefined) {
      if (this.cache.size >= MAX_CACHED_LOCATIONS) this.cache.clear();
      text = (this.readable && this.symbolTable()?.symbolize(address)) || `0x${address.toString(16)}`;
      this.cache.set(address, text);
    }
    return text;
  }

  /** True while the symbol table is held (tests check that it is released). */
  get holdsTable(): boolean {
    return this.table !== undefined;
  }

  /** Releases the table now (group stop). */
  close(): void {
    clearTimeout(this.releaseTimer);
    this.releaseTimer = undefined;
    this.table = undefined;
  }

  private symbolTable(): SymbolTable | undefined {
    this.table ??= SymbolTable.read(this.file);
    clearTimeout(this.releaseTimer);
    this.releaseTimer = setTimeout(() => (this.table = undefined), this.tableTtlMs);
    this.releaseTimer.unref(); // never what keeps the agent alive
    return this.table;
  }
}

/**
 * The text symbols of one read of kallsyms. Only addresses that share the
 * upper 32 bits of the first text symbol are kept (on x86-64 and arm64 that
 * is the kernel and its modules), so an address fits in a float64 together
 * with the symbol's index: sorting one Float64Array sorts the table (module
 * symbols follow the kernel's unsorted).
 */
class SymbolTable {
  constructor(
    private readonly high: number,
    /** low 32 bits of the address * INDEX_SPAN + (INDEX_SPAN - 1 - symbol index), sorted */
    private readonly keys: Float64Array,
    /** names of symbol i: names[nameStarts[i], nameStarts[i + 1]) */
    private readonly names: Buffer,
    private readonly nameStarts: Uint32Array,
  ) {}

  /** The symbol at or below `address`, "name+0xoffset"; undefined outside the table. */
  symbolize(address: bigint): string | undefined {
    if (Number(address >> 32n) !== this.high || this.keys.length === 0) return undefined;
    const low = Number(address & 0xffffffffn);
    // The last key at or below (low, any index). Among symbols at one address the
    // smallest index has the largest key, so aliases resolve to the file's first name.
    const bound = low * INDEX_SPAN + (INDEX_SPAN - 1);
    let lo = 0;
    let hi = this.keys.length - 1;
    if (this.keys[0] > bound) return undefined;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.keys[mid] <= bound) lo = mid;
      else hi = mid - 1;
    }
    const key = this.keys[lo];
    const start = Math.floor(key / INDEX_SPAN);
    const index = INDEX_SPAN - 1 - (key - start * INDEX_SPAN);
    const name = this.names.toString('latin1', this.nameStarts[index], this.nameStarts[index + 1]);
    return `${name}+0x${(low - start).toString(16)}`;
  }

  /** One pass over the file; undefined when it cannot be read or holds no text symbol. */
  static read(file: string): SymbolTable | undefined {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      return undefined;
    }
    const builder = new TableBuilder();
    try {
      const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
      let filled = 0;
      for (;;) {
        const n = fs.readSync(fd, chunk, filled, chunk.length - filled, null);
        const end = filled + n;
        const consumed = builder.addLines(chunk, end, n === 0);
        if (n === 0) break;
        chunk.copy(chunk, 0, consumed, end); // the unfinished last line, read on
        filled = end - consumed;
        if (filled === chunk.length) break; // a 256 KiB line is not kallsyms
      }
    } catch {
      return undefined;
    } finally {
      fs.closeSync(fd);
    }
    const parts = builder.build();
    return parts && new SymbolTable(parts.high, parts.keys, parts.names, parts.nameStarts);
  }
}

/** Index bits per key: up to a million symbols (a kernel has about 120,000 text symbols). */
const INDEX_SPAN = 2 ** 20;

class TableBuilder {
  private high: number | undefined;
  private keys = new Float64Array(1 << 17);
  private nameStarts = new Uint32Array(1 << 17);
  private names = Buffer.allocUnsafe(4 << 20);
  private nameBytes = 0;
  private count = 0;

  /**
   * Adds the text symbols of the complete lines in chunk[0, end) (and the
   * last, unterminated one when `atEof`); returns the bytes consumed. Lines
   * are "ffffffff81000000 T _stext", module symbols end in "\t[module]".
   * Parsed from bytes: no string per line.
   */
  addLines(chunk: Buffer, end: number, atEof: boolean): number {
    let start = 0;
    while (start < end) {
      let newline = chunk.indexOf(0x0a, start);
      if (newline < 0 || newline >= end) {
        if (!atEof) break;
        newline = end;
      }
      const type = chunk[start + 17];
      if (newline - start > 19 && (type === 0x74 || type === 0x54) && this.count < INDEX_SPAN) {
        const high = parseHex(chunk, start, start + 8);
        const low = parseHex(chunk, start + 8, start + 16);
        if ((high !== 0 || low !== 0) && high >= 0 && low >= 0 && (this.high ??= high) === high) {
          let nameEnd = start + 19;
          while (nameEnd < newline && chunk[nameEnd] !== 0x09) nameEnd++;
          this.push(low, start + 19, nameEnd, chunk);
        }
      }
      start = newline + 1;
    }
    return Math.min(start, end);
  }

  /** The table's parts, trimmed to size; undefined without a text symbol. */
  build(): { high: number; keys: Float64Array; names: Buffer; nameStarts: Uint32Array } | undefined {
    if (this.high === undefined || this.count === 0) return undefined;
    const nameStarts = new Uint32Array(this.count + 1);
    nameStarts.set(this.nameStarts.subarray(0, this.count));
    nameStarts[this.count] = this.nameBytes;
    return {
      high: this.high,
      keys: this.keys.slice(0, this.count).sort(),
      names: Buffer.from(this.names.subarray(0, this.nameBytes)),
      nameStarts,
    };
  }

  private push(low: number, nameFrom: number, nameTo: number, chunk: Buffer): void {
    if (this.count === this.keys.length) {
      this.keys = grown(this.keys, new Float64Array(this.keys.length * 2));
      this.nameStarts = grown(this.nameStarts, new Uint32Array(this.nameStarts.length * 2));
    }
    if (this.nameBytes + (nameTo - nameFrom) > this.names.length) {
      this.names = grown(this.names, Buffer.allocUnsafe(this.names.length * 2));
    }
    this.keys[this.count] = low * INDEX_SPAN + (INDEX_SPAN - 1 - this.count);
    this.nameStarts[this.count] = this.nameBytes;
    this.nameBytes += chunk.copy(this.names, this.nameBytes, nameFrom, nameTo);
    this.count++;
  }
}

/** `to` holding `from` at its start. */
function grown<T extends Float64Array | Uint32Array | Buffer>(from: T, to: T): T {
  to.set(from);
  return to;
}

/** The value of lowercase hex digits buf[start, end), or -1 when one is not a hex digit. */
function parseHex(buf: Buffer, start: number, end: number): number {
  let value = 0;
  for (let i = start; i < end; i++) {
    const c = buf[i];
    const digit = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}
