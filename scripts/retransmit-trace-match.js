#!/usr/bin/env node
/*
 * Diagnostic for the tcp-retransmits calls our program does not see
 * (docs/telemetry.md, probe group tcp-retransmits). Two test pods, iperf3
 * both ways at 2% loss, an agent emitting a log record for every
 * retransmission (no rate limit, no folding). Each run records every
 * tcp_retransmit_skb hit from tracefs (clock mono) and matches the hits of
 * pod A with err=0 to the agent's log records by port and time; a hit with
 * no record is printed with its CPU, context flags and the task it
 * interrupted.
 *
 *   npm run build && node scripts/retransmit-trace-match.js [RUNS=10] [SECONDS=45]
 *
 * As root; mounts tracefs if needed; cleans up its pods, agent and tracing.
 */
const path = require('path');
const fs = require('fs');
const { spawn, execFileSync } = require('child_process');
const dist = path.resolve(__dirname, '..', 'dist');
const { TestNode } = require(path.join(dist, 'src/testbed/test-node'));
const { defaultCgroupRoot } = require(path.join(dist, 'src/config/config'));
const { OtlpReceiver } = require(path.join(dist, 'src/testbed/otlp-receiver'));
const { AgentProcess } = require(path.join(dist, 'test/support/agent-process'));
const { dropPercent, dropOutputPercent, iperf, waitForClosedConnections } = require(path.join(dist, 'test/support/traffic'));
const { nstat } = require(path.join(dist, 'src/testbed/kernel-counters'));
const T = '/sys/kernel/tracing';

async function main(runs, seconds) {
  if (!fs.existsSync(`${T}/events`)) execFileSync('mount', ['-t', 'tracefs', 'nodev', T]);
  const work = fs.mkdtempSync('/tmp/flowtel-rtx-');
  const cfg = path.join(work, 'agent.yaml');
  const groups = ['tcpRetransmits', 'tcpResets', 'drops', 'tcpConnections', 'tcpRtt', 'flows'];
  fs.writeFileSync(
    cfg,
    `events:\n  aggregationWindowMs: 0\nprobes:\n${groups.map((g) => `  ${g}: { enabled: true${g === 'tcpRetransmits' ? ', maxEventsPerSecondPerCpu: 1000000' : ''} }\n`).join('')}`,
  );
  const node = await TestNode.create({ cgroupRoot: defaultCgroupRoot(), pods: [{ name: 'a' }, { name: 'b' }] });
  const receiver = await OtlpReceiver.start();
  const agent = AgentProcess.start(['--cgroup-root', defaultCgroupRoot(), '--node-name', 'audit', '--config', cfg], {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_METRIC_EXPORT_INTERVAL: '1000',
  });
  let cat;
  try {
    await agent.running();
    await dropPercent(node, 'a', 'b', 2);
    await dropOutputPercent(node, 'a', 2);
    const a = node.pod('a');
    fs.writeFileSync(`${T}/trace_clock`, 'mono');
    fs.writeFileSync(`${T}/buffer_size_kb`, '65536');
    for (let run = 0; run < runs; run++) {
      fs.writeFileSync(`${T}/trace`, '');
      const out = path.join(work, `trace-${run}.txt`);
      cat = spawn('sh', ['-c', `exec cat ${T}/trace_pipe > ${out}`]);
      await new Promise((r) => setTimeout(r, 300));
      const k0 = await nstat(a.netns, ['TcpRetransSegs', 'TcpExtTCPRetransFail']);
      const r0 = receiver.logRecords.length;
      fs.writeFileSync(`${T}/events/tcp/tcp_retransmit_skb/enable`, '1');
      await Promise.all([iperf(node, 'a', 'b', seconds), iperf(node, 'b', 'a', seconds)]);
      await waitForClosedConnections(node, 'a');
      await waitForClosedConnections(node, 'b');
      fs.writeFileSync(`${T}/events/tcp/tcp_retransmit_skb/enable`, '0');
      await new Promise((r) => setTimeout(r, 5000));
      cat.kill();
      const k1 = await nstat(a.netns, ['TcpRetransSegs', 'TcpExtTCPRetransFail']);
      const recs = receiver.logRecords.slice(r0).filter((r) => r.eventName === 'flowtel.tcp.retransmit' && r.attributes['network.local.address'] === a.ip);
      const hits = fs
        .readFileSync(out, 'utf8')
        .split('\n')
        .filter((l) => l.includes('tcp_retransmit_skb:') && l.includes(`saddr=${a.ip} `) && l.endsWith('err=0'))
        .map((l) => {
          const m = /\[(\d+)\]\s+(\S+)\s+([\d.]+): .* sport=(\d+) dport=(\d+)/.exec(l);
          return { cpu: m[1], flags: m[2], t: BigInt(m[3].replace('.', '')) * 1000n, sport: m[4], dport: m[5], line: l.trim() };
        });
      const kSent = k1.TcpRetransSegs - k0.TcpRetransSegs - (k1.TcpExtTCPRetransFail - k0.TcpExtTCPRetransFail);
      const segs = recs.reduce((n, r) => n + Number(r.attributes['flowtel.tcp.segments']), 0);
      console.log(`run ${run}: kernel ${kSent}, records ${recs.length} (${segs} segs, short ${kSent - segs}), trace err=0 hits ${hits.length}`);
      if (hits.length !== recs.length) {
        // Offset mono -> record clock from the first 200 in order, then nearest match.
        const diffs = hits
          .slice(0, 200)
          .map((h, i) => recs[i].timeUnixNano - h.t)
          .sort((x, y) => (x < y ? -1 : 1));
        const offset = diffs[100];
        const used = new Set();
        const byPort = new Map();
        recs.forEach((r, i) => {
          const k = `${r.attributes['network.local.port']}`;
          (byPort.get(k) ?? byPort.set(k, []).get(k)).push(i);
        });
        for (const h of hits) {
          const cands = byPort.get(h.sport) ?? [];
          let best = -1,
            bestD = 10n ** 18n;
          for (const i of cands) {
            if (used.has(i)) continue;
            let d = recs[i].timeUnixNano - h.t - offset;
            if (d < 0n) d = -d;
            if (d < bestD) {
              bestD = d;
              best = i;
            }
            if (d < 1000n) break;
          }
          if (best >= 0 && bestD < 300000n) used.add(best);
          else console.log(`  unmatched (nearest ${bestD} ns): ${h.line}`);
        }
      }
    }
  } finally {
    fs.writeFileSync(`${T}/events/tcp/tcp_retransmit_skb/enable`, '0');
    fs.writeFileSync(`${T}/trace_clock`, 'local');
    cat?.kill();
    await agent.stop();
    await receiver.stop();
    await node.destroy();
    fs.rmSync(work, { recursive: true, force: true });
  }
}
main(Number(process.argv[2] ?? 8), Number(process.argv[3] ?? 45)).then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
