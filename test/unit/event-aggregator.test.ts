import assert from 'node:assert/strict';
import type { NetworkEvent } from '../../src/events/emit';
import { EventAggregator, type RepeatableEvent } from '../../src/events/event-aggregator';

/** An event whose record is a buffer holding its source port at offset 0 and its time at offset 8. */
function record(port: number, timeNs: number): Buffer {
  const buf = Buffer.alloc(16);
  buf.writeUInt16LE(port, 0);
  buf.writeBigUInt64LE(BigInt(timeNs), 8);
  return buf;
}

const build = (buf: Buffer, offset: number): RepeatableEvent => {
  const port = buf.readUInt16LE(offset);
  return {
    eventName: 'test.drop',
    kernelTimeNs: buf.readBigUInt64LE(offset + 8),
    body: `packet 10.0.0.1:${port} -> 10.0.0.2:53 dropped`,
    pattern: 'packet 10.0.0.1 -> 10.0.0.2:53 dropped',
    varying: ['source.port'],
    attributes: { 'source.address': '10.0.0.1', 'source.port': port, 'destination.port': 53 },
  };
};

function aggregator(windowMs: number, maxKeys = 100) {
  const emitted: NetworkEvent[] = [];
  const built: number[] = [];
  const counting = (buf: Buffer, offset: number) => {
    built.push(buf.readUInt16LE(offset));
    return build(buf, offset);
  };
  const agg = new EventAggregator((e) => emitted.push(e), { windowMs, maxKeys });
  const offer = (key: string, port: number, timeNs: number) => {
    const buf = record(port, timeNs);
    agg.offer(key, BigInt(timeNs), counting, buf, 0);
  };
  return { agg, emitted, built, offer };
}

describe('event aggregation (repeats folded into summary log records)', () => {
  it('emits the first event at once and whole, and its repeats as one summary when the window closes', () => {
    const { agg, emitted, built, offer } = aggregator(1000);
    offer('k', 40001, 100);
    assert.equal(emitted.length, 1, 'the first event is not held back');
    assert.equal(emitted[0].attributes['source.port'], 40001);
    assert.equal(emitted[0].attributes['flowtel.event.count'], undefined);
    offer('k', 40002, 200);
    offer('k', 40003, 300);
    assert.equal(emitted.length, 1, 'repeats wait for the window to close');
    assert.deepEqual(built, [40001], 'repeats are never decoded');
    agg.flush();
    assert.equal(emitted.length, 2);
    const summary = emitted[1];
    assert.equal(summary.attributes['flowtel.event.count'], 2);
    assert.equal(summary.attributes['source.port'], undefined, 'varying attributes are left out');
    assert.equal(summary.attributes['destination.port'], 53);
    assert.equal(summary.kernelTimeNs, 300n, 'stamped with the last repeat');
    assert.equal(summary.body, 'packet 10.0.0.1 -> 10.0.0.2:53 dropped: 2 more within 1000 ms');
    assert.equal(emitted[0].attributes['source.port'], 40001, 'the first record was not changed by its summary');
    assert.equal(agg.folded, 2);
    assert.equal(agg.summaries, 1);
  });

  it('keeps keys apart, sends no summary for an event that did not repeat, and starts over each window', () => {
    const { agg, emitted, offer } = aggregator(1000);
    offer('a', 40001, 1);
    offer('b', 40002, 2);
    offer('a', 40003, 3);
    agg.flush();
    assert.deepEqual(
      emitted.map((e) => e.attributes['flowtel.event.count'] ?? 'first'),
      ['first', 'first', 1],
    );
    offer('a', 40004, 4);
    assert.equal(emitted.length, 4, 'a new window emits the first event again');
    agg.flush();
    assert.equal(emitted.length, 4, 'nothing repeated in the second window');
  });

  it('accounts for every event: records plus summary counts equal the events offered', () => {
    const { agg, emitted, offer } = aggregator(1000, 3);
    let offered = 0;
    for (let window = 0; window < 4; window++) {
      for (let i = 0; i < 50; i++, offered++) offer(`k${i % 7}`, 40000 + i, offered);
      agg.flush();
    }
    const stoodFor = emitted.reduce((n, e) => n + Number(e.attributes['flowtel.event.count'] ?? 1), 0);
    assert.equal(stoodFor, offered);
    // Only 3 keys are tracked per window; the other 4 keys' events go out one record each.
    assert.equal(emitted.filter((e) => e.attributes['flowtel.event.count'] !== undefined).length, 4 * 3);
  });

  it('emits every event on its own with a window of 0', () => {
    const { agg, emitted, offer } = aggregator(0);
    offer('k', 40001, 1);
    offer('k', 40002, 2);
    agg.flush();
    assert.deepEqual(
      emitted.map((e) => e.attributes['source.port']),
      [40001, 40002],
    );
    assert.equal(agg.folded, 0);
  });

  it('sends the open summaries at stop, and events that arrive after it one record each', () => {
    const { agg, emitted, offer } = aggregator(60_000);
    agg.start();
    offer('k', 40001, 1);
    offer('k', 40002, 2);
    agg.stop();
    assert.equal(emitted.length, 2);
    assert.equal(emitted[1].attributes['flowtel.event.count'], 1);
    // The ring's last batch is delivered after the agent stopped the aggregator: no window would ever close.
    offer('k', 40003, 3);
    offer('k', 40004, 4);
    assert.deepEqual(
      emitted.slice(2).map((e) => e.attributes['source.port']),
      [40003, 40004],
    );
  });
});
