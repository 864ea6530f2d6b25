/**
 * Choosing each hook's program variant from a kernel's BTF facts, and naming
 * what is missing. The facts below are what the kernels' own BTF says (read
 * with bpftool from Debian's 5.10 and 6.1 packages and this machine's 6.18);
 * the kernel tests check the same choices on the real kernels.
 */
import assert from 'node:assert/strict';
import { chosenProgramNames, planHooks, unchosenPrograms, type KernelFacts } from '../../src/bpf/hooks';
import { describeLoadFailure } from '../../src/bpf/load-failure';
import { KernelUnsupportedError } from '../../src/bpf/runtime';
import { measureHz } from '../../src/bpf/kernel-hz';
import { PROBE_GROUPS } from '../../src/probes/registry';

function facts(tracepoints: Record<string, string[]>, functions: string[], structs: Record<string, string[]>): KernelFacts {
  return {
    tracepointArgs: (name) => tracepoints[name] ?? null,
    hasFunction: (name) => functions.includes(name),
    structMembers: (name) => structs[name] ?? null,
  };
}

const SK = 'struct sock *';
const SKB = 'struct sk_buff *';
const COMMON = { inet_sock_set_state: [SK, 'int', 'int'], tcp_probe: [SK, SKB], tcp_receive_reset: [SK] };
const STRUCTS = { sock_cgroup_data: ['cgroup', 'classid', 'prioidx'] };
const LINUX_5_10 = facts({ ...COMMON, tcp_retransmit_skb: [SK, SKB], tcp_send_reset: [SK, SKB], kfree_skb: [SKB, 'void *'] }, [], STRUCTS);
const LINUX_6_1 = facts(
  { ...COMMON, tcp_retransmit_skb: [SK, SKB], tcp_send_reset: [SK, SKB], kfree_skb: [SKB, 'void *', 'enum skb_drop_reason'] },
  ['bpf_for_each_map_elem'],
  STRUCTS,
);
const LINUX_6_18 = facts(
  { ...COMMON, tcp_retransmit_skb: [SK, SKB, 'int'], tcp_send_reset: [SK, SKB, 'enum sk_rst_reason'], kfree_skb: [SKB, 'void *', 'enum skb_drop_reason', SK] },
  ['bpf_rdonly_cast', 'bpf_for_each_map_elem'],
  STRUCTS,
);

const group = (name: string) => PROBE_GROUPS.find((g) => g.name === name)!;
const programsOf = (name: string, kernel: KernelFacts) => {
  const plan = planHooks(group(name).hooks, kernel);
  assert.ok(plan.supported, `${name}: ${!plan.supported ? plan.reason : ''}`);
  return chosenProgramNames(plan.programs);
};

describe('program variants chosen from the kernel BTF', () => {
  it('takes the first variant whose requirements hold: the newest programs on 6.18', () => {
    assert.deepEqual(programsOf('tcp-retransmits', LINUX_6_18), ['tcp_retransmit_skb']);
    assert.deepEqual(programsOf('tcp-resets', LINUX_6_18), ['tcp_send_reset', 'tcp_receive_reset']);
    assert.deepEqual(programsOf('drops', LINUX_6_18), ['kfree_skb']);
    assert.deepEqual(programsOf('tcp-rtt', LINUX_6_18), ['rtt_track', 'rtt_walk', 'rtt_adopt']);
    // The groups whose hooks these facts describe (a new group is checked on the real kernels: e2e/doctor).
    for (const name of ['tcp-retransmits', 'tcp-resets', 'drops', 'tcp-connections', 'tcp-rtt', 'flows']) {
      const plan = planHooks(group(name).hooks, LINUX_6_18);
      assert.ok(plan.supported && plan.degradations.length === 0, `${name} degraded on 6.18`);
    }
  });

  it('falls back on 6.1, naming what is lost and which argument of which kernel it needed', () => {
    assert.deepEqual(programsOf('tcp-retransmits', LINUX_6_1), ['tcp_retransmit_skb__sent']);
    assert.deepEqual(programsOf('tcp-rtt', LINUX_6_1), ['rtt_track__skc_cast', 'rtt_walk', 'rtt_adopt']);
    const resets = planHooks(group('tcp-resets').hooks, LINUX_6_1);
    assert.ok(resets.supported);
    assert.deepEqual(
      resets.programs.map((p) => p.variant.program),
      ['tcp_send_reset__no_reason', 'tcp_receive_reset'],
    );
    assert.equal(resets.degradations.length, 1);
    assert.match(
      resets.degradations[0],
      /^tp_btf\/tcp_send_reset: resets sent have no reason .* \(tracepoint tcp_send_reset has 2 arguments here \(struct sock \*, struct sk_buff \*\); its 3rd argument, the reset reason, arrived in Linux 6\.10\)$/,
    );
    // 5.10 cannot walk a map from a program: RTT comes from received segments, named as such.
    const rtt = planHooks(group('tcp-rtt').hooks, LINUX_5_10);
    assert.ok(rtt.supported);
    assert.deepEqual(chosenProgramNames(rtt.programs), ['tcp_probe__skc_cast']);
    assert.deepEqual(rtt.degradations, [
      'tp_btf/tcp_probe: RTT sampled from received segments (a program runs per segment) instead of read from the sockets ' +
        '(this kernel has no BPF helper bpf_for_each_map_elem (Linux 5.13+))',
    ]);
    // A kernel that could walk but lacks what every variant needs is unsupported, not ok with no programs.
    const walkNoCgroup = planHooks(group('tcp-rtt').hooks, facts(COMMON, ['bpf_for_each_map_elem'], { sock_cgroup_data: ['val'] }));
    assert.equal(walkNoCgroup.supported, false);
    // Same counts, another cast: not a degradation.
    assert.equal((planHooks(group('tcp-connections').hooks, LINUX_6_1) as { degradations: string[] }).degradations.length, 0);
  });

  it('calls a group unsupported when no variant fits, with the last requirement it missed', () => {
    const drops = planHooks(group('drops').hooks, LINUX_5_10);
    assert.equal(drops.supported, false);
    assert.equal(
      !drops.supported && drops.reason,
      'tp_btf/kfree_skb: tracepoint kfree_skb has 2 arguments here (struct sk_buff *, void *); its 3rd argument, reason, arrived in Linux 5.17',
    );
    // An older 5.10: every variant lacks the socket's cgroup pointer, and that is the reason, not what only the first needs.
    const old510 = facts({ ...COMMON, tcp_retransmit_skb: [SK, SKB], tcp_send_reset: [SK, SKB] }, [], { sock_cgroup_data: ['val'] });
    for (const name of ['tcp-retransmits', 'tcp-resets', 'tcp-connections', 'tcp-rtt']) {
      const plan = planHooks(group(name).hooks, old510);
      assert.equal(plan.supported, false, name);
      assert.match(
        !plan.supported ? plan.reason : '',
        /: this kernel's struct sock_cgroup_data has no member cgroup \(Linux 5\.15 \(5\.10\.226 in 5\.10 stable\)\+\)$/,
        `${name}: ${!plan.supported ? plan.reason : ''}`,
      );
    }
    const noTracepoint = planHooks(group('tcp-rtt').hooks, facts({}, [], STRUCTS));
    assert.match(!noTracepoint.supported ? noTracepoint.reason : '', /^tp_btf\/tcp_probe: this kernel has no tracepoint tcp_probe/);
  });

  it('leaves every other variant of the hook out of the load', () => {
    const plan = planHooks(group('drops').hooks, LINUX_6_1);
    assert.ok(plan.supported);
    assert.deepEqual(unchosenPrograms(group('drops').hooks, plan.programs), ['kfree_skb']);
  });
});

describe('load failures told apart', () => {
  const nativeError = (message: string, errno: number, libbpfLog: string) => Object.assign(new Error(message), { errno, libbpfLog });

  it('a kernel that lacks a hook is unsupported, with the reason', () => {
    assert.deepEqual(describeLoadFailure(new KernelUnsupportedError('drops', 'no kfree_skb')), { state: 'unsupported', reason: 'no kfree_skb' });
  });

  it("a verifier refusal of a program this kernel should run is our bug, with the verifier's last words", () => {
    const log = [
      "libbpf: prog 'kfree_skb': BPF program load failed: Permission denied",
      "libbpf: prog 'kfree_skb': -- BEGIN PROG LOAD LOG --",
      '0: R1=ctx(off=0,imm=0) R10=fp0',
      '966: (db) lock *(u64 *)(r0 +16) += r2',
      'invalid access to map value, value_size=1296 off=2000 size=8',
      'R0 min value is outside of the allowed memory range',
      'processed 256 insns (limit 1000000) max_states_per_insn 0 total_states 21 peak_states 21 mark_read 11',
      '-- END PROG LOAD LOG --',
    ].join('\n');
    const failure = describeLoadFailure(nativeError('drops.bpf.o: load: Permission denied (errno 13)', 13, log));
    assert.equal(failure.state, 'failed');
    assert.match(failure.reason, /verifier refused kfree_skb, which this kernel should run: a bug in Flowtel/);
    assert.match(failure.reason, /invalid access to map value, value_size=1296 off=2000 size=8; R0 min value is outside of the allowed memory range/);
  });

  it('a verifier log whose head was cut (the addon keeps its last 8 KiB) is still a verifier refusal, not a permission', () => {
    const tail = [
      ...Array.from({ length: 300 }, (_, i) => `${i}: (bf) r1 = r6                     ; R1_w=scalar(id=4) R6=scalar(id=4)`),
      'invalid access to map value, value_size=1296 off=2000 size=8',
      'processed 256 insns (limit 1000000) max_states_per_insn 0 total_states 21 peak_states 21 mark_read 11',
      '-- END PROG LOAD LOG --',
      "libbpf: prog 'inet_sock_set_state__skc_cast': failed to load: -13",
      "libbpf: failed to load object 'tcp_connections.bpf.o'",
    ]
      .join('\n')
      .slice(-8192);
    assert.ok(!tail.includes('BEGIN PROG LOAD LOG'));
    const failure = describeLoadFailure(nativeError('tcp_connections.bpf.o: load: Permission denied (errno 13)', 13, tail));
    assert.equal(failure.state, 'failed');
    assert.match(failure.reason, /verifier refused inet_sock_set_state__skc_cast, which this kernel should run: a bug in Flowtel.*invalid access to map value/);
  });

  it('a map the kernel could not allocate says so, not that the kernel lacks a hook', () => {
    const failure = describeLoadFailure(
      nativeError('flows.bpf.o: load: Cannot allocate memory (errno 12)', 12, "libbpf: map 'flows_by_endpoint': failed to create: Cannot allocate memory(-12)"),
    );
    assert.equal(failure.state, 'failed');
    assert.match(
      failure.reason,
      /^cannot create BPF map flows_by_endpoint \(the kernel could not allocate it: Cannot allocate memory\): lower the group's maxRows/,
    );
  });

  it('a missing privilege and a missing object file are named as such', () => {
    assert.match(
      describeLoadFailure(nativeError('flows.bpf.o: program flows_ingress on cgroup /sys/fs/cgroup: attach: Operation not permitted (errno 1)', 1, '')).reason,
      /^permission denied .*CAP_NET_ADMIN/,
    );
    assert.match(
      describeLoadFailure(nativeError('/x/drops.bpf.o: open: No such file or directory (errno 2)', 2, '')).reason,
      /^the BPF object is missing: \/x\/drops\.bpf\.o/,
    );
  });
});

describe('kernel tick rate measured from jiffies', () => {
  it('rounds the measured rate to the CONFIG_HZ choice within 10%, or gives none', async () => {
    const ticking = (hz: number) => {
      const start = process.hrtime.bigint();
      return () => Math.floor((Number(process.hrtime.bigint() - start) / 1e9) * hz);
    };
    assert.equal(await measureHz(ticking(250), 100), 250);
    assert.equal(await measureHz(ticking(1000), 100), 1000);
    assert.equal(await measureHz(ticking(600), 100), undefined, 'no kernel ticks at 600 Hz');
    // The counter's low 32 bits wrap: the difference still counts.
    let counter = 0xfffffff0;
    const wrapping = () => {
      const now = counter;
      counter = (counter + 25) >>> 0;
      return now;
    };
    assert.equal(await measureHz(wrapping, 100), 250);
  });
});
