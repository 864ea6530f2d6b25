/** The native addon against the real kernel: BTF queries, load/attach/detach, and errors that name their subject. */
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { u64 } from '../../src/bpf/le-bytes';
import { MapRowsReader } from '../../src/bpf/map-rows-reader';
import { nativeAddon, packageRoot, type NativeBpfObject } from '../../src/bpf/native';
import { bpfRecursionMisses } from '../../src/testbed/kernel-counters';
import { kernelCountsSkippedRuns, openForThisKernel, requireKernel } from '../support/kernel';
import { TCP_CONNECTIONS_HOOKS } from '../../src/probes/tcp-connections';
import { TCP_RETRANSMITS_HOOKS } from '../../src/probes/tcp-retransmits';
import * as fixture from './fixtures/recursion';

const OBJECT_FILE = 'tcp_retransmits.bpf.o';
const OBJECT = path.join(packageRoot(), 'bpf', '.output', OBJECT_FILE);
/** tcp_retransmits.bpf.o with only the retransmit program this kernel runs (there is one per tracepoint prototype). */
function retransmitsObject(): { object: NativeBpfObject; program: string } {
  const opened = openForThisKernel(OBJECT_FILE, TCP_RETRANSMITS_HOOKS);
  return { object: opened.object, program: opened.program('tp_btf/tcp_retransmit_skb') };
}

describe('native addon (real kernel)', () => {
  let object: NativeBpfObject | undefined;

  before(function () {
    requireKernel(this);
  });

  afterEach(() => {
    object?.close();
    object = undefined;
  });

  /**
   * Loads tcp_connections.bpf.o with a handshake map of `rows` rows, each key spread over the buckets and
   * carrying its row number at byte 4, each value filled with the row number's low byte.
   */
  function filledHandshakeMap(rows: number) {
    const loaded = openForThisKernel('tcp_connections.bpf.o', TCP_CONNECTIONS_HOOKS).object;
    object = loaded;
    loaded.setMapMaxEntries('tcp_connections_handshake', rows);
    loaded.load();
    const info = loaded.mapInfo('tcp_connections_handshake');
    const keyOf = (i: number) => {
      const key = Buffer.alloc(info.keySize);
      key.writeUInt32LE((i * 2654435761) >>> 0, 0);
      key.writeUInt32LE(i, 4);
      return key;
    };
    for (let i = 0; i < rows; i++) loaded.mapUpdate('tcp_connections_handshake', keyOf(i), Buffer.alloc(info.valueSize, i & 0xff));
    return { loaded, info, keyOf };
  }

  it('reads kernel enums from vmlinux BTF', () => {
    assert.equal(nativeAddon().kernelEnum('bpf_map_type').BPF_MAP_TYPE_RINGBUF, 27);
    // Drop reasons exist exactly where kfree_skb passes one (5.17+; docs/kernels.md).
    const withReason = nativeAddon().kernelTracepointArgs('kfree_skb')!.length >= 3;
    if (withReason) {
      const reasons = nativeAddon().kernelEnum('skb_drop_reason');
      assert.ok(Object.keys(reasons).length > 50);
      assert.equal(typeof reasons.SKB_DROP_REASON_NOT_SPECIFIED, 'number');
      assert.equal(typeof reasons.SKB_DROP_REASON_NETFILTER_DROP, 'number');
    } else {
      assert.throws(() => nativeAddon().kernelEnum('skb_drop_reason'), /no enum named 'skb_drop_reason'/);
    }
    // TCP states are an anonymous enum: found by member, and /proc/net/tcp's numbering is ABI.
    assert.equal(nativeAddon().kernelEnumWithMember('TCP_ESTABLISHED').TCP_LISTEN, 10);
    assert.throws(() => nativeAddon().kernelEnum('no_such_enum'), /vmlinux BTF: BTF has no enum named 'no_such_enum'/);
  });

  it('reads our own struct layouts and enums from the object BTF', () => {
    object = new (nativeAddon().BpfObject)(OBJECT);
    const layout = object.structLayout('tcp_retransmit_event');
    assert.equal(layout.members['header.kind'].offset, 0);
    assert.equal(layout.members['tuple.saddr'].size, 16);
    assert.ok(layout.members.cgroup_id.offset % 8 === 0);
    assert.ok(object.objectEnum('flowtel_event_kind').FLOWTEL_EVENT_TCP_RETRANSMIT > 0);
    assert.throws(() => object!.structLayout('nope'), /tcp_retransmits\.bpf\.o: BTF has no struct named 'nope'/);
  });

  it('names the file and the errno when an object cannot be opened', () => {
    assert.throws(
      () => new (nativeAddon().BpfObject)('/nonexistent/x.bpf.o'),
      (err: Error & { errno?: number }) => /\/nonexistent\/x\.bpf\.o: open: No such file or directory \(errno 2\)/.test(err.message) && err.errno === 2,
    );
  });

  it('checks globals by name and size before load', () => {
    object = retransmitsObject().object;
    assert.throws(() => object!.setGlobal('no_such_global', u64(1)), /no const volatile global named 'no_such_global'/);
    assert.throws(() => object!.setGlobal('flowtel_events_per_cpu_per_sec', Buffer.alloc(4)), /value is 4 bytes, the variable is 8/);
    object.setGlobal('flowtel_events_per_cpu_per_sec', u64(7));
    object.load();
    assert.throws(() => object!.setGlobal('flowtel_events_per_cpu_per_sec', u64(1)), /cannot set after load/);
  });

  it('loads, attaches, reads maps in batches and detaches one link at a time', () => {
    const { object: opened, program } = retransmitsObject();
    object = opened;
    object.setMapMaxEntries('tcp_retransmits_by_cgroup', 128);
    object.load();
    const info = object.mapInfo('tcp_retransmits_by_cgroup');
    assert.equal(info.maxEntries, 128);
    assert.equal(info.perCpu, false, 'a map shared by all CPUs');
    assert.equal(info.valueStride, 16);
    const lossInfo = object.mapInfo('flowtel_losses');
    assert.equal(lossInfo.perCpu, true);
    assert.equal(lossInfo.valueStride, 8 * nativeAddon().possibleCpus(), 'a per-CPU map: one value per possible CPU');
    const link = object.attach(program);
    const losses = object.mapReadAll('flowtel_losses');
    assert.equal(losses.count, 3); // an array map: every index present
    assert.equal(losses.values.length, 3 * losses.valueStride);
    object.detach(link);
    assert.throws(() => object!.detach(link), new RegExp(`no link with id ${link}`));
    assert.throws(() => object!.attach('nope'), /no program named 'nope'/);
    assert.throws(() => object!.mapReadAll('nope'), /no map named 'nope'/);
  });

  it('reads every row of a large hash map, across batches cut short at bucket boundaries', () => {
    // Hash-map batches hold whole buckets only, so most batches come back short
    // of the size asked for; an earlier reader took a short batch for the end
    // and returned a few thousand of 100,000 flow rows.
    const rows = 20_000;
    const { loaded, keyOf } = filledHandshakeMap(rows);
    const written = Array.from({ length: rows }, (_, i) => keyOf(i).toString('hex'));
    const read = loaded.mapReadAll('tcp_connections_handshake');
    assert.equal(read.count, rows);
    const seen = new Set<string>();
    for (let i = 0; i < read.count; i++) seen.add(read.keys.toString('hex', i * read.keySize, (i + 1) * read.keySize));
    assert.equal(seen.size, rows, 'no row read twice');
    for (const key of written) assert.ok(seen.has(key), `row ${key} missing`);
  });

  it('walks a map through small Buffers, one batch at a time, every row once and with its own value', () => {
    const rows = 10_000;
    const { loaded, info } = filledHandshakeMap(rows);

    const room = 300;
    const keys = Buffer.alloc(room * info.keySize);
    const values = Buffer.alloc(room * info.valueStride);
    const seen = new Set<string>();
    const batches: number[] = [];
    const total = loaded.mapReadEach('tcp_connections_handshake', keys, values, (count) => {
      batches.push(count);
      for (let i = 0; i < count; i++) {
        seen.add(keys.toString('hex', i * info.keySize, (i + 1) * info.keySize));
        assert.equal(values[i * info.valueStride], keys.readUInt32LE(i * info.keySize + 4) & 0xff, "the value is its own row's");
      }
    });
    assert.equal(total, rows);
    assert.equal(seen.size, rows, 'every row once');
    assert.ok(batches.length >= rows / room, `${batches.length} batches of at most ${room}`);
    assert.ok(Math.max(...batches) <= room);

    // A throw in the callback ends the walk and reaches the caller; Buffers with no room for a row are refused.
    assert.throws(
      () =>
        loaded.mapReadEach('tcp_connections_handshake', keys, values, () => {
          throw new Error('stop here');
        }),
      /stop here/,
    );
    assert.throws(() => loaded.mapReadEach('tcp_connections_handshake', Buffer.alloc(1), values, () => undefined), /no room for one row/);
    assert.throws(() => loaded.mapReadEach('tcp_connections_handshake', keys, values, 'x' as unknown as () => void), /onBatch a function/);

    // The reader's batches: positions follow on from batch to batch, and a map of large values (histogram
    // rows) is walked in batches of a few hundred KB, not of thousands of rows.
    const reader = new MapRowsReader(loaded, 'tcp_connections_handshake');
    let next = 0;
    let readerBatches = 0;
    const fromReader = new Set<string>();
    const count = reader.forEach((batch, first) => {
      assert.equal(first, next, 'each batch starts where the one before ended');
      assert.ok(batch.count * (batch.keySize + batch.valueStride) <= 512 * 1024, `a batch of ${batch.count} rows`);
      next += batch.count;
      readerBatches++;
      for (let i = 0; i < batch.count; i++) {
        fromReader.add(batch.keys.toString('hex', i * batch.keySize, (i + 1) * batch.keySize));
        assert.equal(batch.values[i * batch.valueStride], batch.keys.readUInt32LE(i * batch.keySize + 4) & 0xff, "the value is its own row's");
      }
    });
    assert.equal(count, rows);
    assert.equal(next, rows);
    assert.equal(fromReader.size, rows);
    assert.ok(readerBatches > 1, `${readerBatches} batches`);
  });

  it('reports the errno and the libbpf log when attaching to a missing cgroup', () => {
    const { object: opened, program } = retransmitsObject();
    object = opened;
    object.load();
    assert.throws(
      () => object!.attachCgroup(program, '/sys/fs/cgroup/no-such-cgroup'),
      new RegExp(`program ${program} on cgroup /sys/fs/cgroup/no-such-cgroup: open cgroup: No such file or directory \\(errno 2\\)`),
    );
  });

  it('can leave a program out of the load', () => {
    const { object: opened, program } = retransmitsObject();
    object = opened;
    object.setProgramAutoload(program, false);
    object.load();
    assert.throws(() => object!.attach(program), new RegExp(`program ${program} \\(tp_btf/tcp_retransmit_skb\\): attach: .*\\(errno \\d+\\)`));
  });

  // One of the two, by kernel: before 6.1 the fixture would deadlock a CPU instead of being skipped.
  if (!fixture.kernelSkipsNestedRuns())
    it('reads no skipped runs where the kernel skips none (before 6.1), and 5.10 has no counter for them', () => {
      const { object: opened, program } = retransmitsObject();
      object = opened;
      object.load();
      object.attach(program);
      assert.equal(kernelCountsSkippedRuns(), !/^5\.(10|11)\./.test(os.release()), 'bpf_prog_info.recursion_misses arrived in 5.12');
      if (kernelCountsSkippedRuns()) assert.equal(object.programRecursionMisses(program), 0);
      else assert.throws(() => object!.programRecursionMisses(program), new RegExp(`program ${program}: the kernel does not report recursion misses`));
    });

  if (fixture.kernelSkipsNestedRuns())
    it('reads how many runs of a program the kernel skipped as recursive, as bpftool does', async () => {
      const dir = await fixture.buildRecursionFixture();
      await fixture.withPrintEventRestored(async () => {
        const loaded = new (nativeAddon().BpfObject)(path.join(dir, fixture.RECURSION_FIXTURE.objectFile));
        object = loaded;
        fixture.RECURSION_FIXTURE.configure(loaded);
        loaded.load();
        for (const { program } of fixture.RECURSION_FIXTURE.hooks) loaded.attach(program);
        assert.equal(loaded.programRecursionMisses(fixture.RECURSING_PROGRAM), 0);
        fixture.triggerRecursion(7);
        assert.equal(loaded.programRecursionMisses(fixture.RECURSING_PROGRAM), 7);
        assert.equal(await bpfRecursionMisses(fixture.RECURSING_PROGRAM), 7);
        // The trigger is a tracepoint program that nothing nests inside.
        assert.equal(loaded.programRecursionMisses(fixture.TRIGGER_PROGRAM), 0);
        object.close();
        object = undefined;
      });
    });

  it('names a program that was left out of the load when asked for its recursion misses', () => {
    const { object: opened, program } = retransmitsObject();
    object = opened;
    object.setProgramAutoload(program, false);
    object.load();
    assert.throws(() => object!.programRecursionMisses(program), new RegExp(`tcp_retransmits\\.bpf\\.o: program ${program}: not loaded`));
    assert.throws(() => object!.programRecursionMisses('no_such_program'), /no program named 'no_such_program'/);
  });

  it('refuses to use a closed object', () => {
    object = new (nativeAddon().BpfObject)(OBJECT);
    object.close();
    assert.throws(() => object!.load(), /object is closed/);
  });
});
