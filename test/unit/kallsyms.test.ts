import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { KernelSymbols } from '../../src/probes/drops/kallsyms';
import { requireKernel } from '../support/kernel';
import { tempDir } from '../support/tmp';

describe('kernel symbolizer', () => {
  it('finds the text symbol at or below an address, with the offset; ignores data symbols and module tags', () => {
    const file = path.join(tempDir('kallsyms'), 'kallsyms');
    fs.writeFileSync(
      file,
      [
        'ffffffff81000000 T _stext',
        'ffffffff81000100 t nf_hook_slow',
        'ffffffff81000180 D some_data',
        'ffffffff81000200 T kfree_skb_reason',
        'ffffffffc0000000 t nft_do_chain\t[nf_tables]',
        '',
      ].join('\n'),
    );
    const symbols = new KernelSymbols(file);
    symbols.load();
    assert.equal(symbols.symbolize(0xffffffff81000150n), 'nf_hook_slow+0x50');
    assert.equal(symbols.symbolize(0xffffffff81000190n), 'nf_hook_slow+0x90', 'data symbols are not functions');
    assert.equal(symbols.symbolize(0xffffffff81000200n), 'kfree_skb_reason+0x0');
    assert.equal(symbols.symbolize(0xffffffffc0000010n), 'nft_do_chain+0x10');
    assert.equal(symbols.symbolize(0x1000n), '0x1000', 'below every symbol');
  });

  it('resolves aliases to the first name in the file and reads lines that span read chunks', () => {
    const file = path.join(tempDir('kallsyms'), 'kallsyms');
    // More than one 256 KiB read: some line is cut by a chunk boundary.
    const lines = ['ffffffff81000000 T _stext', 'ffffffff81000010 t first_alias', 'ffffffff81000010 T second_alias'];
    for (let i = 0; i < 20_000; i++) lines.push(`ffffffff${(0x82000000 + i * 16).toString(16)} t function_number_${i}`);
    fs.writeFileSync(file, lines.join('\n')); // no final newline: the last line is read at end of file
    const symbols = new KernelSymbols(file);
    symbols.load();
    assert.equal(symbols.symbolize(0xffffffff81000012n), 'first_alias+0x2');
    for (const i of [0, 7_777, 12_345, 19_999]) {
      assert.equal(symbols.symbolize(0xffffffff82000000n + BigInt(i * 16 + 3)), `function_number_${i}+0x3`);
    }
  });

  it("agrees with a line-by-line reading of this kernel's /proc/kallsyms", function () {
    requireKernel(this); // root: kptr_restrict shows others zero addresses
    const text = fs.readFileSync('/proc/kallsyms', 'latin1');
    const functions = text
      .split('\n')
      .map((line) => line.split(/[ \t]/))
      .filter(([at, type]) => (type === 't' || type === 'T') && at.startsWith('ffffffff'))
      .map(([at, , name]) => ({ at: BigInt(`0x${at}`), name }));
    const symbols = new KernelSymbols();
    symbols.load();
    // Every 997th function, probed inside its body (the next function starts at a higher address or the same).
    for (let i = 0; i < functions.length; i += 997) {
      const { at, name } = functions[i];
      const next = functions.slice(i + 1).find((f) => f.at > at);
      if (!next || next.at - at < 2n || functions.some((f, j) => j < i && f.at === at)) continue;
      assert.equal(symbols.symbolize(at + 1n), `${name}+0x1`);
    }
  });

  it('releases the symbol table after its time to live and reads it again on the next miss', async () => {
    const file = path.join(tempDir('kallsyms'), 'kallsyms');
    fs.writeFileSync(file, 'ffffffff81000000 T _stext\nffffffff81000100 t nf_hook_slow\n');
    const symbols = new KernelSymbols(file, 50);
    symbols.load();
    assert.equal(symbols.symbolize(0xffffffff81000101n), 'nf_hook_slow+0x1');
    assert.equal(symbols.holdsTable, true);
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.equal(symbols.holdsTable, false);
    assert.equal(symbols.symbolize(0xffffffff81000001n), '_stext+0x1');
    symbols.close();
    assert.equal(symbols.holdsTable, false);
  });

  it('symbolizes when the file starts with absolute per-CPU symbols at 0, as on 6.1', () => {
    const file = path.join(tempDir('kallsyms'), 'percpu-first');
    // 6.1 lists about 300 of them (12 KiB) before the first text symbol.
    const percpu = Array.from({ length: 400 }, (_, i) => `0000000000000000 A percpu_symbol_${i}\n`).join('');
    fs.writeFileSync(file, `${percpu}ffffffff81000000 T _stext\nffffffff81000100 t nf_hook_slow\n`);
    const symbols = new KernelSymbols(file);
    symbols.load();
    assert.equal(symbols.symbolize(0xffffffff81000150n), 'nf_hook_slow+0x50');
  });

  it('leaves addresses as hex when kallsyms is unreadable or hides addresses', () => {
    const file = path.join(tempDir('kallsyms'), 'restricted');
    fs.writeFileSync(file, '0000000000000000 T _stext\n0000000000000000 t nf_hook_slow\n');
    const hidden = new KernelSymbols(file);
    hidden.load();
    assert.equal(hidden.symbolize(0xffffffff81000150n), '0xffffffff81000150');
    const missing = new KernelSymbols('/nonexistent/kallsyms');
    missing.load();
    assert.equal(missing.symbolize(0x10n), '0x10');
  });
});
