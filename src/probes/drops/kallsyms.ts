/**
 * Kernel address → "function+0xoffset" from /proc/kallsyms, for drop log
 * records. Loaded once when the drops group starts (not on the first drop, in
 * the middle of traffic), text symbols only, stored compactly: addresses in a
 * BigUint64Array, names in one string with offsets (about 200,000 names on a
 * distribution kernel). Addresses read as 0 (kptr_restrict) leave locations
 * as hex.
 */
import fs from 'node:fs';

const MAX_CACHED_LOCATIONS = 4096;

export class KernelSymbols {
  private addresses = new BigUint64Array(0);
  private names = '';
  private nameStarts = new Uint32Array(1);
  /** Drops happen at a few hundred places at most; a search costs about 18 BigInt reads. */
  private readonly recent = new Map<bigint, string>();

  constructor(private readonly file = '/proc/kallsyms') {}

  load(): void {
    let text = '';
    try {
      text = fs.readFileSync(this.file, 'latin1');
    } catch {
      return; // unreadable: locations stay hex
    }
    const entries: Array<[bigint, string]> = [];
    let at = 0;
    while (at < text.length) {
      let end = text.indexOf('\n', at);
      if (end < 0) end = text.length;
      // "ffffffff81000000 T _stext\t[module]"
      const type = text.charCodeAt(at + 17);
      if (type === 0x74 || type === 0x54) {
        const address = BigInt(`0x${text.slice(at, at + 16)}`);
        if (address !== 0n) {
          // Module symbols end with "\t[module]"; search this line only.
          const line = text.slice(at + 19, end);
          const tab = line.indexOf('\t');
          entries.push([address, tab >= 0 ? line.slice(0, tab) : line]);
        }
      }
      at = end + 1;
    }
    entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    this.addresses = BigUint64Array.from(entries.map((e) => e[0]));
    this.nameStarts = new Uint32Array(entries.length + 1);
    let length = 0;
    entries.forEach((e, i) => {
      this.nameStarts[i] = length;
      length += e[1].length;
    });
    this.nameStarts[entries.length] = length;
    this.names = entries.map((e) => e[1]).join('');
  }

  symbolize(address: bigint): string {
    let text = this.recent.get(address);
    if (text === undefined) {
      // Bounded: a kernel with unbounded drop sites would only lose the cache.
      if (this.recent.size >= MAX_CACHED_LOCATIONS) this.recent.clear();
      text = this.search(address);
      this.recent.set(address, text);
    }
    return text;
  }

  private search(address: bigint): string {
    const addresses = this.addresses;
    let lo = 0;
    let hi = addresses.length - 1;
    if (hi < 0 || address < addresses[0]) return `0x${address.toString(16)}`;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (addresses[mid] <= address) lo = mid;
      else hi = mid - 1;
    }
    const name = this.names.slice(this.nameStarts[lo], this.nameStarts[lo + 1]);
    return `${name}+0x${(address - addresses[lo]).toString(16)}`;
  }
}
