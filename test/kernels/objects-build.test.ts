/**
 * The BPF objects compile against the vmlinux.h of every kernel of the matrix,
 * not only the build machine's: the programs use no kernel type an older
 * vmlinux.h lacks (a reason or an argument a newer kernel added is read as an
 * integer). The image build uses 6.1's; a developer may build on any of them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../src/bpf/native';
import { tempDir } from '../support/tmp';
import { VM_KERNELS } from './matrix';

describe('BPF objects built against older kernels', function () {
  this.timeout(300_000);

  for (const series of VM_KERNELS) {
    it(`compile against the vmlinux.h of Debian's ${series} kernel, every object`, () => {
      const fetch = spawnSync(path.join(packageRoot(), 'scripts', 'debian-kernel.sh'), ['vmlinux', series], { encoding: 'utf8' });
      assert.equal(fetch.status, 0, fetch.stderr);
      const out = tempDir(`bpf-${series}`);
      const make = spawnSync('make', ['-s', '-C', path.join(packageRoot(), 'bpf'), `OUTPUT=${out}`, `VMLINUX_BTF=${fetch.stdout.trim()}`], {
        encoding: 'utf8',
      });
      assert.equal(make.status, 0, make.stderr);
      const sources = fs.readdirSync(path.join(packageRoot(), 'bpf')).filter((f) => f.endsWith('.bpf.c'));
      for (const source of sources) assert.ok(fs.statSync(path.join(out, source.replace(/\.c$/, '.o'))).size > 0, source);
      // The vmlinux.h is that kernel's: 5.10's has no drop reasons, 6.1's no reset reasons.
      const header = fs.readFileSync(path.join(out, 'vmlinux.h'), 'utf8');
      assert.equal(header.includes('enum skb_drop_reason {'), series !== '5.10');
      assert.equal(header.includes('enum sk_rst_reason {'), series === '6.12');
    });
  }
});
