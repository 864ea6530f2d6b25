/**
 * Bad input through the real CLI: one message naming the field, the value
 * and what was expected, and exit code 2. Missing privileges: one message
 * naming the capability, exit code 2.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { CAP_SYS_RESOURCE, effectiveCapabilities, hasCapability } from '../../src/bpf/capabilities';
import { packageRoot } from '../../src/bpf/native';
import { CLI, agentEnv, randomHealthPort } from '../support/agent-process';
import { groupOnThisKernel } from '../support/kernel-table';
import { PROBE_GROUPS } from '../../src/probes/registry';
import { defaultConfig } from '../../src/config/config';
import { cgroupRoot, requireKernel } from '../support/kernel';
import { tempDir } from '../support/tmp';

function flowtel(args: string[], env: NodeJS.ProcessEnv = {}, wrapper: string[] = []) {
  const [cmd, ...pre] = wrapper.length ? wrapper : [process.execPath];
  const argv = wrapper.length ? [...pre, process.execPath, CLI, ...args] : [CLI, ...args];
  const result = spawnSync(cmd, argv, { env: agentEnv(env), encoding: 'utf8', timeout: 30_000 });
  return { code: result.status, stderr: result.stderr, stdout: result.stdout };
}

/** Like flowtel(), without blocking the event loop (a server of this process is involved). */
async function flowtelAsync(args: string[]) {
  const child = spawn(process.execPath, [CLI, ...args, '--health-port', String(randomHealthPort())], { env: agentEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { code, stderr };
}

function configFile(text: string): string {
  const dir = tempDir('cli');
  const file = path.join(dir, 'flowtel.yaml');
  fs.writeFileSync(file, text);
  return file;
}

function assertOneLine(stderr: string): void {
  assert.equal(stderr.trim().split('\n').length, 1, `expected one message line, got:\n${stderr}`);
}

describe('CLI: bad input exits 2 with one clear message', () => {
  it('unknown config key', () => {
    const file = configFile('exporters:\n  prometheus:\n    prot: 9000\n');
    const r = flowtel(['run', '--config', file]);
    assert.equal(r.code, 2, r.stderr);
    assertOneLine(r.stderr);
    assert.match(
      r.stderr,
      /exporters\.prometheus\.prot = 9000 \(number\) \(from config file .*flowtel\.yaml\): expected a known key \(one of: enabled, host, port\)/,
    );
  });

  it('an OTLP TLS file that cannot be read', () => {
    const r = flowtel(['run', '--health-port', String(randomHealthPort())], {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'https://127.0.0.1:4317',
      OTEL_EXPORTER_OTLP_CERTIFICATE: '/nonexistent/flowtel-ca.crt',
    });
    assert.equal(r.code, 2, r.stderr);
    assertOneLine(r.stderr);
    assert.match(
      r.stderr,
      /OTEL_EXPORTER_OTLP_CERTIFICATE = "\/nonexistent\/flowtel-ca.crt" \(from environment variable OTEL_EXPORTER_OTLP_CERTIFICATE\): expected a readable PEM file .*ENOENT/,
    );
  });

  it('wrong type in the config file', () => {
    const file = configFile('probes:\n  tcpRetransmits:\n    enabled: "yes"\n');
    const r = flowtel(['run', '--config', file]);
    assert.equal(r.code, 2, r.stderr);
    assertOneLine(r.stderr);
    assert.match(r.stderr, /probes\.tcpRetransmits\.enabled = "yes" .*expected true or false/);
  });

  it('bad flag value and unknown flag', () => {
    const bad = flowtel(['run', '--prometheus-port', 'http']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /exporters\.prometheus\.port = "http" \(from flag --prometheus-port\): expected an integer from 1 to 65535/);
    const unknown = flowtel(['run', '--verbose', 'yes']);
    assert.equal(unknown.code, 2, unknown.stderr);
    assert.match(unknown.stderr, /--verbose .*expected a known flag/);
  });

  it('bad OTEL_* environment variable', () => {
    const r = flowtel(['run'], { OTEL_METRIC_EXPORT_INTERVAL: 'often' });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /from environment variable OTEL_METRIC_EXPORT_INTERVAL\): expected an integer/);
  });

  it('missing cgroup root', () => {
    const r = flowtel(['run', '--cgroup-root', '/sys/fs/cgroup/does-not-exist']);
    assert.equal(r.code, 2, r.stderr);
    assertOneLine(r.stderr);
    assert.match(r.stderr, /cgroupRoot = "\/sys\/fs\/cgroup\/does-not-exist" \(from flags\): expected a mounted cgroup v2 file system/);
  });

  it('unknown command', () => {
    const r = flowtel(['serve']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /command = "serve" .*expected one of run, validate, doctor, help, version/);
  });

  it('validate: 0 for a valid file, 2 with the message for a broken one', () => {
    const good = configFile(`cgroupRoot: ${cgroupRoot()}\nprobes:\n  flows:\n    granularity: flow\n`);
    const ok = flowtel(['validate', '--config', good]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /configuration is valid/);
    const bad = configFile(`cgroupRoot: ${cgroupRoot()}\nprobes:\n  flows:\n    granularity: packet\n`);
    const r = flowtel(['validate', '--config', bad]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /probes\.flows\.granularity = "packet" .*expected one of "pod", "flow"/);
  });
});

describe('CLI: missing privileges', function () {
  before(function () {
    requireKernel(this);
  });

  it('names CAP_BPF and CAP_PERFMON and exits 2 when they are dropped', () => {
    // Dropping the capabilities from the bounding set removes them from root after exec.
    const r = flowtel(['run', '--cgroup-root', cgroupRoot()], {}, ['setpriv', '--bounding-set=-bpf,-perfmon,-sys_admin', '--inh-caps=-all']);
    assert.equal(r.code, 2, r.stderr);
    assertOneLine(r.stderr);
    assert.match(r.stderr, /missing capability CAP_BPF and CAP_PERFMON/);
  });

  it('says which address is taken when the Prometheus port is busy, and exits non-zero', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const r = await flowtelAsync(['run', '--cgroup-root', cgroupRoot(), '--prometheus-host', '127.0.0.1', '--prometheus-port', String(port)]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`Prometheus exporter cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
    } finally {
      blocker.close();
    }
  });

  it('warns once per probe group that cannot load, naming the cause, and exits 1 when none can', async () => {
    const emptyDir = tempDir('nobpf');
    const r = await flowtelAsync(['run', '--cgroup-root', cgroupRoot(), '--bpf-dir', emptyDir, '--prometheus', 'false']);
    assert.equal(r.code, 1, r.stderr);
    const warnings = r.stderr.split('\n').filter((l) => l.includes('level=warn') && l.includes(' group='));
    // Each group's object file, as its own spec names it (built only where the kernel can run the group: a
    // group may read kernel BTF its kernel lacks when built, as drops does on 5.10).
    const defaults = defaultConfig(packageRoot()).probes;
    const node = { kernelHz: { hz: 250 }, cgroupRoot: cgroupRoot() };
    const objectFile = (group: (typeof PROBE_GROUPS)[number]): string => group.build(defaults, node).objectSpec.objectFile;
    assert.equal(warnings.length, PROBE_GROUPS.length, r.stderr);
    PROBE_GROUPS.forEach((group, i) => {
      const { name } = group;
      // A group this kernel cannot run is named so before its object is looked for (docs/kernels.md).
      const here = groupOnThisKernel(name);
      const cause =
        here.state === 'unsupported'
          ? `probe group ${name} disabled: this kernel cannot run it: ${here.reason}`
          : `probe group ${name} disabled: the BPF object is missing: ${emptyDir}/${objectFile(group)}: open: No such file or directory`;
      assert.ok(warnings[i].includes(cause), `${warnings[i]}\nexpected: ${cause}`);
      assert.ok(warnings[i].includes(group.withoutIt), warnings[i]);
    });
    assert.match(r.stderr, /flowtel: no probe group could be loaded/);
  });

  it('names only CAP_PERFMON when only it is missing', () => {
    const r = flowtel(['run', '--cgroup-root', cgroupRoot()], {}, ['setpriv', '--bounding-set=-perfmon,-sys_admin', '--inh-caps=-all']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /missing capability CAP_PERFMON:/);
  });

  /**
   * A config with only these probe groups on: under qemu's emulation each group loaded costs seconds, and these
   * tests are about one group's cause.
   */
  function onlyGroups(...enabled: string[]): string[] {
    return groupsConfig(enabled, {});
  }

  /** `extra`: more settings of a group, as YAML flow-mapping entries ("key: value"). */
  function groupsConfig(enabled: string[], extra: Record<string, string>): string[] {
    const groups = PROBE_GROUPS.map((g) => g.configKey);
    const file = path.join(tempDir('groups'), 'flowtel.yaml');
    const settings = (g: string) => `enabled: ${enabled.includes(g)}${extra[g] ? `, ${extra[g]}` : ''}`;
    fs.writeFileSync(file, `probes:\n${groups.map((g) => `  ${g}: { ${settings(g)} }\n`).join('')}`);
    // The unprivileged user of one test must be able to read it.
    fs.chmodSync(path.dirname(file), 0o755);
    fs.chmodSync(file, 0o644);
    return ['--config', file];
  }

  /** Runs the agent under `wrapper` until it says it runs, then stops it; its stderr. */
  async function runUntilRunning(args: string[], wrapper: string[]): Promise<string> {
    const [cmd, ...pre] = wrapper;
    const child = spawn(cmd, [...pre, process.execPath, CLI, 'run', '--health-port', String(randomHealthPort()), ...args], {
      env: agentEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      for (const deadline = Date.now() + 120_000; !stderr.includes('msg="flowtel running"');) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the agent did not start:\n${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      child.kill('SIGINT');
      await exited;
    }
    return stderr;
  }

  function doctorChecks(args: string[], wrapper: string[]): Array<{ name: string; status: string; detail: string }> {
    const r = flowtel(['doctor', '-o', 'json', ...args], {}, wrapper);
    return (JSON.parse(r.stdout) as { checks: Array<{ name: string; status: string; detail: string }> }).checks;
  }

  it('names CAP_NET_ADMIN as what the flows group lacks for per-packet counting, in the log and in doctor', async function () {
    this.timeout(300_000);
    const wrapper = ['setpriv', '--bounding-set=-net_admin,-sys_admin', '--inh-caps=-all'];
    const cause = 'attaching a program at a cgroup needs CAP_NET_ADMIN, which the agent does not have';
    // Per-packet programs at the cgroup root: for UDP where TCP comes from the sockets (5.13+), for all on 5.10.
    const groups = groupsConfig(['flows', 'tcpRetransmits'], { flows: 'nonTcpPackets: true' });
    const stderr = await runUntilRunning(['--cgroup-root', cgroupRoot(), '--prometheus', 'false', ...groups], wrapper);
    const flows = stderr.split('\n').filter((l) => l.includes('group=flows'));
    assert.equal(flows.length, 1, stderr);
    assert.ok(flows[0].includes(cause), flows[0]);
    const checks = doctorChecks(['--cgroup-root', cgroupRoot(), ...groups], wrapper);
    assert.ok(checks.find((c) => c.name === 'flows')!.detail.includes(cause), JSON.stringify(checks));
    assert.match(checks.find((c) => c.name === 'capabilities')!.detail, /missing CAP_NET_ADMIN/);
  });

  it('names a damaged BPF object as such, in the log and in doctor', async function () {
    this.timeout(300_000);
    const dir = tempDir('damaged-bpf');
    const objects = path.join(packageRoot(), 'bpf', '.output');
    for (const file of fs.readdirSync(objects).filter((f) => f.endsWith('.bpf.o'))) fs.copyFileSync(path.join(objects, file), path.join(dir, file));
    // Cut short: the ELF header is intact, its sections are not.
    fs.writeFileSync(path.join(dir, 'tcp_rtt.bpf.o'), fs.readFileSync(path.join(objects, 'tcp_rtt.bpf.o')).subarray(0, 3000));
    const cause = `the BPF object is damaged or not one of Flowtel's: ${dir}/tcp_rtt.bpf.o: open: `;
    const groups = onlyGroups('tcpRtt', 'tcpRetransmits');
    const stderr = await runUntilRunning(['--cgroup-root', cgroupRoot(), '--prometheus', 'false', '--bpf-dir', dir, ...groups], ['env']);
    const rtt = stderr.split('\n').filter((l) => l.includes('group=tcp-rtt'));
    assert.equal(rtt.length, 1, stderr);
    assert.ok(rtt[0].includes(cause), rtt[0]);
    assert.doesNotMatch(rtt[0], /Unknown error/);
    const checks = doctorChecks(['--cgroup-root', cgroupRoot(), '--bpf-dir', dir, ...groups], ['env']);
    assert.ok(checks.find((c) => c.name === 'tcp-rtt')!.detail.includes(cause), JSON.stringify(checks));
  });

  it("warns once, and counts, when it may not read other processes' network namespaces (no CAP_SYS_PTRACE)", async function () {
    this.timeout(300_000);
    // A user other than root, with the BPF capabilities but not CAP_SYS_PTRACE; and CAP_SYS_RESOURCE where this
    // process has it, which kernels before 5.11 need for maps beyond a user's locked-memory limit.
    const caps = `cap_bpf,cap_perfmon,cap_net_admin${hasCapability(effectiveCapabilities(), CAP_SYS_RESOURCE) ? ',cap_sys_resource' : ''}`;
    const wrapper = [
      'capsh',
      `--caps=${caps}+eip cap_setpcap,cap_setuid,cap_setgid+ep`,
      '--keep=1',
      '--user=nobody',
      `--addamb=${caps}`,
      '--',
      '-c',
      'exec "$@"',
      'agent',
    ];
    const port = 20000 + Math.floor(Math.random() * 30000);
    const [cmd, ...pre] = wrapper;
    const groups = onlyGroups('tcpRetransmits');
    const child = spawn(
      cmd,
      [
        ...pre,
        process.execPath,
        CLI,
        'run',
        '--health-port',
        String(randomHealthPort()),
        '--cgroup-root',
        cgroupRoot(),
        '--prometheus-host',
        '127.0.0.1',
        '--prometheus-port',
        String(port),
        ...groups,
      ],
      { env: agentEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      let metric: RegExpExecArray | null = null;
      for (const deadline = Date.now() + 120_000; !metric;) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`no flowtel_agent_netns_unreadable from the agent:\n${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 500));
        const text = await fetch(`http://127.0.0.1:${port}/metrics`).then(
          (r) => r.text(),
          () => '',
        );
        metric = /^flowtel_agent_netns_unreadable(?:\{[^}]*\})? (\d+)/m.exec(text);
      }
      const warnings = stderr.split('\n').filter((l) => l.includes('capability=CAP_SYS_PTRACE'));
      assert.equal(warnings.length, 1, stderr);
      const counted = Number(/cannot read the network namespace of (\d+) processes/.exec(warnings[0])?.[1]);
      assert.ok(counted > 0, warnings[0]);
      assert.ok(Number(metric[1]) > 0, `exported ${metric[1]}`);
      assert.match(warnings[0], /attributed to unknown; grant CAP_SYS_PTRACE/);
    } finally {
      child.kill('SIGINT');
      await exited;
    }
    const checks = doctorChecks(['--cgroup-root', cgroupRoot(), ...groups], wrapper);
    assert.match(checks.find((c) => c.name === 'capabilities')!.detail, /missing CAP_SYS_PTRACE/);
  });
});
