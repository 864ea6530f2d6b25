/**
 * What the operator reads about failing exports: one warning, a summary per
 * interval while it lasts, one recovery line, with the counts the
 * self-metrics export; and when a signal counts as unhealthy for /readyz.
 */
import assert from 'node:assert/strict';
import { ExportWatch } from '../../src/exporters/export-watch';

function watch(summaryIntervalMs = 60_000) {
  let now = 1_000_000;
  const lines: Array<{ level: 'warn' | 'info'; message: string }> = [];
  const w = new ExportWatch({
    signal: 'metrics',
    destination: 'OTLP grpc http://collector:4317',
    items: 'data points',
    failureCost: 'the next export carries the totals',
    log: { warn: (message) => lines.push({ level: 'warn', message }), info: (message) => lines.push({ level: 'info', message }) },
    summaryIntervalMs,
    now: () => now,
  });
  return { w, lines, advance: (ms: number) => (now += ms) };
}

describe('export watch', () => {
  it('tells the first failure at once, then one summary per interval, then the recovery, with matching counts', () => {
    const { w, lines, advance } = watch();
    w.succeeded();
    w.failed(100, 'UNAVAILABLE: connection refused');
    assert.deepEqual(
      lines.map((l) => l.level),
      ['warn'],
    );
    assert.match(
      lines[0].message,
      /^metrics export to OTLP grpc http:\/\/collector:4317 failed: UNAVAILABLE: connection refused; the next export carries the totals/,
    );
    for (let i = 0; i < 5; i++) {
      advance(15_000);
      w.failed(100, 'UNAVAILABLE: connection refused');
    }
    // 60 s after the first: one summary of the 4 failures since it (the 5th falls after the summary).
    assert.equal(lines.length, 2);
    assert.match(
      lines[1].message,
      /^metrics exports to OTLP grpc http:\/\/collector:4317 still failing: 4 failed exports \(400 data points\) in the last 60 s; last cause: UNAVAILABLE/,
    );
    advance(1000);
    w.succeeded();
    assert.equal(lines.length, 3);
    assert.equal(lines[2].level, 'info');
    assert.match(lines[2].message, /recovered after 6 failed exports over 76 s \(600 data points in them\)/);
    assert.deepEqual(w.totals, { succeeded: 2, failed: 6, itemsFailed: 600, itemsRejected: 0 });
    // A new outage is told afresh.
    w.failed(1, 'DEADLINE_EXCEEDED');
    assert.equal(lines.length, 4);
    assert.match(lines[3].message, /failed: DEADLINE_EXCEEDED/);
  });

  it('tells a partial success once, then summarizes further ones, counting every refused item', () => {
    const { w, lines, advance } = watch(10_000);
    w.rejected(7, 'points too old');
    w.rejected(3, 'points too old');
    advance(10_000);
    w.rejected(2, 'duplicate');
    assert.equal(lines.length, 2);
    assert.match(lines[0].message, /refused 7 data points of a metrics export \(partial success\): points too old; they are lost/);
    assert.match(lines[1].message, /refused 5 more data points in 2 metrics exports \(partial success\).*last cause: duplicate/);
    assert.equal(w.totals.itemsRejected, 12);
  });

  it('is unhealthy while exports keep failing past the window, and not for a failure older than the window', () => {
    const { w, advance } = watch();
    assert.ok(w.healthy(3000), 'nothing sent yet');
    w.failed(1, 'refused');
    assert.ok(w.healthy(3000), 'failing, but not for longer than the window since start');
    advance(4000);
    w.failed(1, 'refused');
    assert.ok(!w.healthy(3000), 'failing for 4 s, the window is 3 s');
    advance(10_000);
    assert.ok(w.healthy(3000), 'the last failure is 10 s old: nothing was sent since (no log records), nothing to judge');
    w.failed(1, 'refused');
    assert.ok(!w.healthy(3000));
    w.succeeded();
    assert.ok(w.healthy(3000));
  });
});
