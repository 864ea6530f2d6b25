/**
 * `flowtel doctor` on this kernel, run as an operator runs it: its rows for
 * the probe groups (state, program variants, the reason when not ok) and its
 * exit code are what docs/kernels.md says of this kernel, so the doc holds on
 * every kernel of the CI matrix. Then the cases that change the verdict: no
 * BPF privileges (cannot run), no BPF objects, an OTLP endpoint that accepts
 * or refuses a real export, Kubernetes RBAC that allows or denies a verb.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { DoctorReport } from '../../src/doctor';
import { K8sApiServer } from '../../src/testbed/k8s-api-server';
import { OtlpReceiver } from '../../src/testbed/otlp-receiver';
import { CLI, AGENT_NODE_FLAGS, agentEnv } from '../support/agent-process';
import { cgroupRoot, requireKernel } from '../support/kernel';
import {
  columnOf,
  groupOnThisKernel,
  KERNEL_DOC,
  parseKernelTable,
  readKernelDoc,
  renderKernelTable,
  seriesOf,
  type KernelColumn,
} from '../support/kernel-table';
import { PROBE_GROUPS as PROBE_GROUP_ENTRIES } from '../../src/probes/registry';
import { PROBE_GROUPS as PROBE_GROUP_KEYS } from '../support/scenario';
import { tempDir } from '../support/tmp';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `flowtel doctor` (through `wrapper`, e.g. setpriv) and waits for it. */
function doctor(args: string[], env: NodeJS.ProcessEnv = {}, wrapper: string[] = []): Promise<Run> {
  const argv = [...wrapper, process.execPath, ...AGENT_NODE_FLAGS, CLI, 'doctor', '--cgroup-root', cgroupRoot(), ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { env: agentEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // Under qemu's emulation loading six objects takes a while; a hang is still caught.
    const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** What this kernel's BTF predicts for every probe group, and the exit code that follows from it. */
function predictedColumn(series: string): KernelColumn {
  const groups = new Map(PROBE_GROUP_ENTRIES.map((g) => [g.name, groupOnThisKernel(g.name)]));
  const allOk = [...groups.values()].every((c) => c.state === 'ok');
  return { series, exitCode: allOk ? 0 : 1, groups };
}

function report(run: Run): DoctorReport {
  try {
    return JSON.parse(run.stdout) as DoctorReport;
  } catch {
    throw new Error(`doctor printed no JSON report (exit ${run.code}):\n${run.stdout}\n${run.stderr}`);
  }
}

function check(r: DoctorReport, name: string) {
  const found = r.checks.find((c) => c.name === name);
  assert.ok(found, `no ${name} row in ${JSON.stringify(r.checks.map((c) => c.name))}`);
  return found;
}

describe('flowtel doctor (real kernel)', function () {
  this.timeout(240_000);

  before(function () {
    requireKernel(this);
  });

  it('reports each probe group on this kernel as docs/kernels.md does: state, program variants, reasons, exit code', async () => {
    const run = await doctor(['-o', 'json']);
    const r = report(run);
    const series = seriesOf(r.kernel);
    const found = columnOf(series, r);
    console.log(`      kernel ${r.kernel}: exit ${r.exitCode}; ${[...found.groups].map(([g, c]) => `${g} ${c.state}`).join(', ')}`);
    const documented = parseKernelTable(readKernelDoc()).get(series);
    // CI runs only matrix kernels. On a developer's other kernel the expectation is what this kernel's BTF
    // predicts, which doctor's real load and attach must bear out (a verifier refusal would show as failed).
    assert.ok(documented || process.env.CI !== 'true', `kernel ${r.kernel} (${series}) is not a column of ${KERNEL_DOC}`);
    const expected = documented ?? predictedColumn(series);
    const explain = `docs/kernels.md disagrees with doctor on ${series}; doctor's view of it (node dist/test/kernels/kernel-table.js rewrites the doc):\n${renderKernelTable([found])}`;
    assert.deepEqual([...found.groups.keys()], [...expected.groups.keys()], explain);
    for (const [group, cell] of expected.groups) {
      const actual = found.groups.get(group)!;
      assert.equal(actual.state, cell.state, `${group}: ${explain}`);
      assert.deepEqual(actual.programs, cell.programs, `${group}: ${explain}`);
      if (cell.state !== 'ok') assert.equal(actual.reason, cell.reason, `${group}: ${explain}`);
    }
    assert.equal(r.exitCode, expected.exitCode, explain);
    assert.equal(run.code, r.exitCode, "the process exits with the report's code");
    for (const name of ['kernel', 'capabilities', 'cgroup v2 root', 'CONFIG_HZ'])
      assert.equal(check(r, name).status, 'ok', `${name}: ${check(r, name).detail}`);
    // The tick rate is what the kernel was built with: every kernel here has a config to read or jiffies to measure.
    assert.match(check(r, 'CONFIG_HZ').detail, /^(100|250|300|1000) \(/);
    // A group that does not run says what is missing from the telemetry.
    for (const c of r.checks.filter((c) => c.kind === 'group' && c.status === 'unavailable')) assert.ok(c.impact?.startsWith('no '), `${c.name}: ${c.impact}`);
  });

  it('prints a table: one row per check with its symbol, and the verdict', async () => {
    const run = await doctor(['-o', 'table']);
    const r = report(await doctor(['-o', 'json']));
    assert.equal(run.code, r.exitCode);
    const lines = run.stdout.split('\n');
    const symbol = { ok: '✓', degraded: '~', unavailable: '✗', fatal: '✗', info: '–' } as const;
    for (const c of r.checks) {
      const row = lines.find((l) => l.trimStart().startsWith(`${symbol[c.status]} ${c.name} `));
      assert.ok(row, `no "${symbol[c.status]} ${c.name}" row in:\n${run.stdout}`);
    }
    assert.match(lines.filter(Boolean).at(-1) ?? '', new RegExp(`^exit ${r.exitCode}: `));
  });

  it('cannot run without CAP_BPF and CAP_PERFMON: exit 2, and no group is tried', async () => {
    const run = await doctor(['-o', 'json'], {}, ['setpriv', '--bounding-set=-bpf,-perfmon,-sys_admin', '--inh-caps=-all']);
    const r = report(run);
    assert.equal(run.code, 2);
    assert.equal(check(r, 'capabilities').status, 'fatal');
    assert.match(check(r, 'capabilities').detail, /missing CAP_BPF and CAP_PERFMON/);
    for (const c of r.checks.filter((c) => c.kind === 'group')) assert.match(c.detail, /^not tried: capabilities missing/);
  });

  it('names the missing BPF objects, and exits 2 when no group can load', async () => {
    const run = await doctor(['-o', 'json', '--bpf-dir', tempDir('doctor-nobpf')]);
    const r = report(run);
    assert.equal(run.code, 2);
    const groups = r.checks.filter((c) => c.kind === 'group' && c.group);
    for (const c of groups.filter((c) => c.group!.state === 'failed'))
      assert.match(c.detail, /the BPF object is missing: .*\.bpf\.o: open: No such file or directory/);
    // A group this kernel cannot run is reported as such, before its object is looked for.
    for (const c of groups.filter((c) => c.group!.state !== 'failed')) assert.equal(c.group!.state, 'unsupported');
    assert.equal(check(r, 'probe groups').status, 'fatal');
  });

  /** A config with every probe group off: the checks below are about the network, and loading six objects under emulation takes long. */
  function groupsOff(): string {
    const file = path.join(tempDir('doctor-config'), 'flowtel.yaml');
    fs.writeFileSync(file, `probes:\n${PROBE_GROUP_KEYS.map((k) => `  ${k}: { enabled: false }\n`).join('')}`);
    return file;
  }

  it('exports to the OTLP endpoint for real, and reports one that refuses', async () => {
    const receiver = await OtlpReceiver.start();
    const config = groupsOff();
    try {
      const before = receiver.metricExports.length;
      const ok = report(await doctor(['-o', 'json', '--config', config, '--otlp-endpoint', receiver.endpoint]));
      assert.deepEqual(
        ok.checks.filter((c) => c.kind === 'group').map((c) => c.status),
        PROBE_GROUP_KEYS.map(() => 'info'),
        'groups off: not tried',
      );
      assert.equal(check(ok, 'otlp').status, 'ok', check(ok, 'otlp').detail);
      assert.equal(receiver.metricExports.length, before + 1, 'the receiver got one export');
    } finally {
      await receiver.stop();
    }
    // The port the receiver had is closed now.
    const refused = report(await doctor(['-o', 'json', '--config', config, '--otlp-endpoint', receiver.endpoint]));
    assert.equal(check(refused, 'otlp').status, 'unavailable');
    assert.match(check(refused, 'otlp').detail, new RegExp(`${receiver.endpoint.replace(/[.:/]/g, '\\$&')} \\(OTLP grpc\\) did not accept an export`));
    assert.ok(refused.exitCode >= 1);
  });

  it('asks the API server whether RBAC allows each verb the agent needs, and names a denied one', async () => {
    const api = await K8sApiServer.start();
    try {
      const kubeconfig = path.join(tempDir('doctor-k8s'), 'kubeconfig');
      api.writeKubeconfig(kubeconfig);
      const config = groupsOff();
      const allowed = report(await doctor(['-o', 'json', '--config', config, '--kubeconfig', kubeconfig]));
      assert.equal(check(allowed, 'kubernetes api').status, 'ok');
      assert.match(check(allowed, 'kubernetes api').detail, /v1\.31\.4-flowtel-test/);
      assert.equal(check(allowed, 'rbac').status, 'ok', check(allowed, 'rbac').detail);
      api.setForbidden('nodes', 'list');
      api.setForbidden('services', '*');
      const denied = report(await doctor(['-o', 'json', '--config', config, '--kubeconfig', kubeconfig]));
      assert.equal(check(denied, 'rbac').status, 'unavailable');
      assert.equal(check(denied, 'rbac').detail, "denied: list services, watch services, list nodes (the chart's ClusterRole grants them)");
      assert.ok(denied.exitCode >= 1);
    } finally {
      await api.stop();
    }
  });
});
