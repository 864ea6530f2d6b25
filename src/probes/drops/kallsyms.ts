/**
 * Kernel address → "function+0xoffset" from /proc/kallsyms, for drop log
 * records. Looked up per address and cached, not loaded whole: the table is
 * about 120,000 names (3 MB of text, about 4 MiB of agent RSS held for the
 * few dozen places that drop packets on a node). The first drop at a new
 * place costs one pass over /proc/kallsyms (tens of ms); every later one a
 * map lookup. Addresses read as 0 (kptr_restrict) leave locations as hex.
 */
import fs from 'node:fs';

/** Distinct drop places cached; a kernel with more only loses the cache. */
const MAX_CACHED_LOCATIONS = 4096;
const CHUNK_BYTES = 256 * 1024;
const HIDDEN_ADDRESS = '0000000000000000';

export class KernelSymbols {
  private readonly cache = new Map<bigint, string>();
  private readable = false;

  constructor(private readonly file = '/proc/kallsyms') {}

  /** Checks, when the group starts, that the file can be read and shows addresses. */
  load(): void {
    this.readable = false;
    try {
      const fd = fs.openSync(this.file, 'r');
      try {
        const head = Buffer.alloc(64);
        const n = fs.readSync(fd, head, 0, head.length, null);
        this.readable = n >= 16 && head.toString('latin1', 0, 16) !== HIDDEN_ADDRESS;
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
      text = (this.readable && this.lookUp(address)) || `0x${address.toString(16)}`;
      this.cache.set(address, text);
    }
    return text;
  }

  /**
   * One pass over the file for the text symbol at or below `address`. Lines
   * are "ffffffff81000000 T _stext" (module symbols end in "\t[module]"), with
   * fixed-width lowercase hex, so comparing address strings compares numbers;
   * the file is not sorted across modules, hence the full pass.
   */
  private lookUp(address: bigint): string | undefined {
    const target = address.toString(16).padStart(16, '0');
    let bestAddress = '';
    let bestName = '';
    forEachLine(this.file, (line) => {
      const type = line.charCodeAt(17);
      if (type !== 0x74 && type !== 0x54) return; // t / T: text
      const at = line.slice(0, 16);
      if (at > target || at <= bestAddress || at === HIDDEN_ADDRESS) return;
      const tab = line.indexOf('\t', 19);
      bestAddress = at;
      bestName = tab >= 0 ? line.slice(19, tab) : line.slice(19);
    });
    if (!bestAddress) return undefined;
    return `${bestName}+0x${(address - BigInt(`0x${bestAddress}`)).toString(16)}`;
  }
}

/** Calls `visit` with each line of a file read in chunks (procfs files have no size to read at once). */
function forEachLine(file: string, visit: (line: string) => void): void {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return;
  }
  try {
    const chunk = Buffer.alloc(CHUNK_BYTES);
    let carry = '';
    for (;;) {
      const n = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      const text = carry + chunk.toString('latin1', 0, n);
      let start = 0;
      for (let end = text.indexOf('\n'); end >= 0; end = text.indexOf('\n', start)) {
        visit(text.slice(start, end));
        start = end + 1;
      }
      carry = text.slice(start);
    }
    if (carry) visit(carry);
  } finally {
    fs.closeSync(fd);
  }
}
