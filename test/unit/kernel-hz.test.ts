import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { HZ_MAX, kernelHz, msToJiffies, parseConfigHz } from '../../src/bpf/kernel-hz';

describe('kernel tick rate (CONFIG_HZ)', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowtel-hz-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads CONFIG_HZ from a plain config, not CONFIG_HZ_250 or a commented line', () => {
    assert.equal(parseConfigHz('# CONFIG_HZ_100 is not set\nCONFIG_HZ_250=y\nCONFIG_HZ=250\n'), 250);
    assert.equal(parseConfigHz('CONFIG_HZ_1000=y\n# CONFIG_HZ is not set\n'), undefined);
  });

  it('takes the first readable file, gzip or not, and says which', () => {
    const plain = path.join(dir, 'config');
    const gz = path.join(dir, 'config.gz');
    fs.writeFileSync(gz, zlib.gzipSync('CONFIG_HZ=300\n'));
    assert.deepEqual(kernelHz([plain, gz]), { hz: 300, source: gz });
    fs.writeFileSync(plain, 'CONFIG_HZ=100\n');
    assert.deepEqual(kernelHz([plain, gz]), { hz: 100, source: plain });
  });

  it('assumes the highest rate, with no source, when no file tells', () => {
    const broken = path.join(dir, 'broken.gz');
    fs.writeFileSync(broken, 'not gzip');
    assert.deepEqual(kernelHz([path.join(dir, 'absent'), broken]), { hz: HZ_MAX });
  });

  it('converts a window in ms to whole jiffies, at least one', () => {
    assert.equal(msToJiffies(50, 250), 13);
    assert.equal(msToJiffies(50, 1000), 50);
    assert.equal(msToJiffies(1, 100), 1);
  });

  it("reads this machine's rate from its configuration when the kernel has one, else assumes the highest", () => {
    const found = kernelHz();
    const readable = [`/boot/config-${os.release()}`, '/proc/config.gz'].filter((f) => fs.existsSync(f));
    if (readable.length > 0) {
      assert.ok(found.source !== undefined && readable.includes(found.source), `CONFIG_HZ not read from ${readable.join(' or ')}`);
      assert.ok([100, 250, 300, 1000].includes(found.hz), `CONFIG_HZ ${found.hz}`);
    } else {
      assert.deepEqual(found, { hz: HZ_MAX });
    }
  });
});
