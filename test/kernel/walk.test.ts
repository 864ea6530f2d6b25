/**
 * A pass over a map's rows run on demand (BPF_PROG_TEST_RUN of a raw_tp
 * program with bpf_for_each_map_elem), claiming each row's new amount with a
 * compare-and-exchange: the way the socket table can read live sockets once
 * per collection on kernels that refuse iterator programs (this machine's
 * 6.18, test/kernel/iterator.test.ts). bpf_for_each_map_elem arrived in 5.13
 * and BPF compare-and-exchange in 5.12, so 5.10 refuses the program.
 */
import assert from 'node:assert/strict';
import type { NativeBpfObject } from '../../src/bpf/native';
import { seriesOf } from '../support/kernel-table';
import { useFixtureObject } from './fixtures/build';

/** Kernels of the CI matrix older than both helpers. */
const TOO_OLD = new Set(['5.10']);

function putRow(object: NativeBpfObject, key: number, reported: number, current: number): void {
  const k = Buffer.alloc(4);
  k.writeUInt32LE(key);
  const v = Buffer.alloc(16);
  v.writeBigUInt64LE(BigInt(reported), 0);
  v.writeBigUInt64LE(BigInt(current), 8);
  object.mapUpdate('walk_rows', k, v);
}

function total(object: NativeBpfObject): number {
  return Number(object.mapReadAll('walk_total').values.readBigUInt64LE(0));
}

describe('kernel: a map walked on demand', function () {
  this.timeout(60_000);
  const fixture = useFixtureObject('walk');

  it('visits every row per run and counts each amount once', async () => {
    const object = await fixture.open();
    if (TOO_OLD.has(seriesOf())) {
      assert.throws(() => object.load(), /load: Invalid argument/, 'this kernel loads the walk now: take it out of TOO_OLD');
      console.log(`      ${seriesOf()} refuses the walk (no bpf_for_each_map_elem or compare-and-exchange), as expected`);
      return;
    }
    object.load();
    putRow(object, 1, 0, 10);
    putRow(object, 2, 0, 20);
    putRow(object, 3, 0, 30);
    assert.equal(object.programTestRun('walk'), 3, 'rows visited');
    assert.equal(total(object), 60);
    assert.equal(object.programTestRun('walk'), 3);
    assert.equal(total(object), 60, 'nothing new: nothing counted again');
    putRow(object, 1, 10, 15); // row 1's counter moved on by 5
    putRow(object, 4, 0, 7); // a new row
    assert.equal(object.programTestRun('walk'), 4);
    assert.equal(total(object), 72);
  });
});
