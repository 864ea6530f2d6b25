import { strict as assert } from 'node:assert';
import { FixedKeySet } from '../../src/tables/fixed-key-set';

/** A 12-byte key: the number in the first 4 bytes, then a fixed tail, so keys differ in few bytes. */
function keyOf(n: number): Buffer {
  const key = Buffer.alloc(12, 0xab);
  key.writeUInt32LE(n, 0);
  return key;
}

describe('fixed-size byte key set', () => {
  it('finds every key it was given through growth, and no key it was not', () => {
    const set = new FixedKeySet(12, 4);
    const slots: number[] = [];
    for (let n = 0; n < 5000; n++) {
      assert.equal(set.find(keyOf(n), 0), -1, `key ${n} before it was added`);
      slots.push(set.add(keyOf(n), 0));
    }
    assert.equal(set.size, 5000);
    assert.ok(set.capacity >= 5000);
    assert.deepEqual(
      slots,
      Array.from({ length: 5000 }, (_, n) => n),
      'slots are handed out in order',
    );
    for (let n = 0; n < 5000; n++) assert.equal(set.find(keyOf(n), 0), n);
    for (let n = 5000; n < 6000; n++) assert.equal(set.find(keyOf(n), 0), -1);
    // A key read from the middle of a larger Buffer, as rows come from a map read.
    const rows = Buffer.concat([keyOf(7), keyOf(4321), keyOf(99_999)]);
    assert.equal(set.find(rows, 12), 4321);
    assert.equal(set.find(rows, 24), -1);
    assert.ok(set.matches(4321, rows, 12));
    assert.ok(!set.matches(4320, rows, 12));
  });

  it('compacts: drops the slots not kept, moves the rest down in order, and says where each went', () => {
    const set = new FixedKeySet(12);
    for (let n = 0; n < 1000; n++) set.add(keyOf(n), 0);
    const before = set.capacity;
    const moved = set.compact((slot) => slot % 10 === 3);
    assert.equal(set.size, 100);
    for (let n = 0; n < 1000; n++) {
      const expected = n % 10 === 3 ? (n - 3) / 10 : -1;
      assert.equal(moved[n], expected, `old slot ${n}`);
      assert.equal(set.find(keyOf(n), 0), expected, `key ${n} after compaction`);
    }
    assert.ok(set.capacity < before, `a set a tenth full shrinks (capacity ${before} -> ${set.capacity})`);
    const bytes = set.bytes;
    assert.equal(bytes.readUInt32LE(set.offsetOf(5)), 53, 'slot 5 holds the key of old slot 53');
    // New keys go after the survivors and are found with them.
    assert.equal(set.add(keyOf(5000), 0), 100);
    assert.equal(set.find(keyOf(5000), 0), 100);
    assert.equal(set.find(keyOf(993), 0), 99);
  });

  it('refuses a key size that is not a positive integer, naming it', () => {
    assert.throws(() => new FixedKeySet(0), /keySize must be a positive integer, got 0/);
    assert.throws(() => new FixedKeySet(2.5), /got 2.5/);
  });
});
