import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { KernelSymbols } from '../../src/probes/drops/kallsyms';
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
