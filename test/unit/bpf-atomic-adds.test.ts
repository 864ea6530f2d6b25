/**
 * Counters that two of our programs can update at once must be added to with
 * one locked instruction: on one CPU, one program interrupting another
 * (cgroup_skb egress in a process and again in a softirq; the loss and
 * rate-limit slots every program of an object shares), and on several CPUs
 * the rows of maps shared by all CPUs. Otherwise a load, an add and a store
 * lose the add of a program that runs between them. The compiled objects are
 * checked, since
 * that is where a plain `+=` shows: a 64-bit load from a map value and a store
 * of the same register to the same place a few instructions later.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../src/bpf/native';

const OBJECT_DIR = path.join(packageRoot(), 'bpf', '.output');

/** Read-modify-write sequences on 64-bit memory outside the stack, as "load @i … store @j". */
function plainAdds(disassembly: string): string[] {
  const insns = disassembly
    .split('\n')
    .map((line) => /^\s+(\d+):\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ at: Number(m[1]), text: m[2].trim() }));
  const found: string[] = [];
  insns.forEach((insn, i) => {
    const store = /^\*\(u64 \*\)\((r\d+) ([+-] \d+)\) = (r\d+)$/.exec(insn.text);
    if (!store || store[1] === 'r10') return;
    const [, base, offset, reg] = store;
    const load = insns.slice(Math.max(0, i - 6), i).find((prev) => prev.text === `${reg} = *(u64 *)(${base} ${offset})`);
    if (load) found.push(`load @${load.at}, store @${insn.at}: ${insn.text}`);
  });
  return found;
}

describe('BPF objects: shared counters', () => {
  it('finds a plain add in a disassembly, and no locked one', () => {
    const plain = ['     4:\tr1 = *(u64 *)(r0 + 8)', '     5:\tr1 += r2', '     6:\t*(u64 *)(r0 + 8) = r1'].join('\n');
    assert.equal(plainAdds(plain).length, 1);
    assert.deepEqual(plainAdds('     4:\tlock *(u64 *)(r0 + 8) += r2'), []);
    assert.deepEqual(
      plainAdds(['     4:\tr1 = *(u64 *)(r10 - 8)', '     5:\tr1 += r2', '     6:\t*(u64 *)(r10 - 8) = r1'].join('\n')),
      [],
      'the stack is not shared',
    );
  });

  it('are added to atomically in every object', () => {
    const objects = fs.readdirSync(OBJECT_DIR).filter((f) => f.endsWith('.bpf.o'));
    assert.ok(objects.includes('flows.bpf.o'), `no built objects in ${OBJECT_DIR}: run npm run build:bpf`);
    for (const object of objects) {
      const disassembly = execFileSync('llvm-objdump', ['-d', '--no-show-raw-insn', path.join(OBJECT_DIR, object)], { encoding: 'utf8' });
      assert.deepEqual(plainAdds(disassembly), [], `${object} adds to a counter with a load and a store`);
    }
  });
});
