/**
 * Kernel address → "function+0xoffset" from /proc/kallsyms, for drop log
 * records. Loaded on first use (only text symbols) and kept sorted for
 * binary search; addresses read as 0 (kptr_restrict) leave locations as hex.
 */
import fs from 'node:fs';

export class KernelSymbols {
  private addresses: BigUint64Array | undefined;
  private names: string[] = [];

  constructor(private readonly file = '/proc/kallsyms') {}

  symbolize(address: bigint): string {
    this.load();
    const addresses = this.addresses as BigUint64Array;
    let lo = 0;
    let hi = addresses.length - 1;
    if (hi < 0 || address < addresses[0]) return `0x${address.toString(16)}`;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (addresses[mid] <= address) lo = mid;
      else hi = mid - 1;
    }
    return `${this.names[lo]}+0x${(address - addresses[lo]).toString(16)}`;
  }

  private load(): void {
    if (this.addresses) return;
    const entries: Array<[bigint, string]> = [];
    let text = '';
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch {
      // unreadable: locations stay hex
    }
    for (const line of text.split('\n')) {
      const [addr, type, name] = line.split(' ');
      if (!name || (type !== 't' && type !== 'T')) continue;
      const value = BigInt(`0x${addr}`);
      if (value !== 0n) entries.push([value, name.split('\t')[0]]);
    }
    entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    this.addresses = BigUint64Array.from(entries.map((e) => e[0]));
    this.names = entries.map((e) => e[1]);
  }
}
