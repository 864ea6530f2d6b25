/**
 * The container image: the Dockerfile's shape (a toolchain build stage, a
 * slim runtime stage with node and libbpf only) and the build script it calls,
 * run here outside Docker (no Docker engine on CI machines) into a temp dir.
 * The staged tree is what the image holds; it must run on its own.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { agentEnv, waitFor } from '../support/agent-process';
import { cgroupRoot, requireKernel } from '../support/kernel';
import { tempDir } from '../support/tmp';
import { REPO } from './helm';
import { freePorts, httpGet } from './local-net';
import { AGENT_ENV, AGENT_NODE_FLAGS } from '../support/agent-process';
import type { DoctorReport } from '../../src/doctor';
import { columnOf, parseKernelTable, readKernelDoc, seriesOf } from '../support/kernel-table';
import { runInVm } from '../kernels/vm';

const SCRIPT = path.join(REPO, 'scripts', 'build-image-contents.sh');

interface Stage {
  from: string;
  name?: string;
  lines: string[];
}

function dockerfileStages(): Stage[] {
  const text = fs.readFileSync(path.join(REPO, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const stages: Stage[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) stages.push({ from: from[1], name: from[2], lines: [] });
    else stages[stages.length - 1]?.lines.push(line.replace(/\s+/g, ' '));
  }
  return stages;
}

function run(cmd: string, args: string[], options: { timeoutMs: number; env?: NodeJS.ProcessEnv }): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: options.env ?? agentEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('container image', () => {
  it('Dockerfile: a build stage that calls the build script, a node:20-bookworm-slim runtime with libbpf only', () => {
    const stages = dockerfileStages();
    assert.equal(stages.length, 2, 'a build stage and a runtime stage');
    const [build, runtime] = stages;
    assert.match(build.from, /^node:20-bookworm$/);
    const buildApt = build.lines.find((l) => l.includes('apt-get install')) ?? '';
    for (const pkg of ['clang', 'llvm', 'libbpf-dev', 'bpftool']) assert.ok(buildApt.split(' ').includes(pkg), `build stage installs ${pkg}`);
    assert.ok(build.lines.some((l) => /^RUN .*scripts\/build-image-contents\.sh \/out$/.test(l)), 'the build stage runs the script');

    assert.equal(runtime.from, 'node:20-bookworm-slim');
    const runtimeApt = runtime.lines.find((l) => l.includes('apt-get install')) ?? '';
    const packages = runtimeApt.slice(runtimeApt.indexOf('apt-get install')).split('&&')[0].split(' ').filter((w) => /^[a-z0-9][a-z0-9.+-]+$/.test(w) && !['apt-get', 'install'].includes(w));
    assert.deepEqual(packages.sort(), ['libbpf1', 'libelf1', 'zlib1g']);
    assert.ok(runtime.lines.includes(`COPY --from=${build.name} /out /opt/flowtel`), 'the runtime copies the staged tree');
    const entrypoint = runtime.lines.find((l) => l.startsWith('ENTRYPOINT')) ?? '';
    assert.ok(entrypoint.includes('/opt/flowtel/dist/src/cli/main.js'));
    for (const flag of AGENT_NODE_FLAGS) assert.ok(entrypoint.includes(`"${flag}"`), `the image runs node with ${flag}, as tests and benchmarks do`);
    for (const [name, value] of Object.entries(AGENT_ENV)) assert.ok(runtime.lines.includes(`ENV ${name}=${value}`), `the image sets ${name}=${value}, as tests and benchmarks do`);
    const start = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).scripts.start as string;
    for (const [name, value] of Object.entries(AGENT_ENV)) assert.ok(start.includes(`${name}=${value} node`), `npm start sets ${name}=${value}`);
    const startNode = start.slice(start.indexOf(' node ')).split(' ');
    for (const flag of AGENT_NODE_FLAGS) assert.ok(startNode.includes(flag), `npm start runs node with ${flag}, as tests and benchmarks do`);

    const ignored = fs.readFileSync(path.join(REPO, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    for (const local of ['node_modules', 'dist', 'native/build', 'bpf/.output', '.git']) assert.ok(ignored.includes(local), `.dockerignore has ${local}`);
  });

  describe('scripts/build-image-contents.sh', function () {
    this.timeout(900_000);
    let out = '';
    let buildOutput = '';

    before(async function () {
      // Builds the addon and the BPF objects: needs the toolchain and kernel BTF, like the kernel tests.
      requireKernel(this);
      out = path.join(tempDir('image'), 'out');
      const r = await run('bash', [SCRIPT, out], { timeoutMs: 840_000 });
      assert.equal(r.code, 0, `the build script failed:\n${r.output.slice(-5000)}`);
      buildOutput = r.output;
    });

    it("compiles the BPF objects against the vmlinux.h of Debian's 6.1 kernel, whatever kernel builds them", () => {
      assert.match(buildOutput, /fetching the BTF of Debian's 6\.1 kernel/);
      assert.match(buildOutput, /building the BPF objects \(BTF: \S+\/linux-image-6\.1\.0-\d+-amd64-unsigned\/vmlinux\)/);
    });

    /** `flowtel doctor` of the staged tree with its own objects, as docs/kernels.md has it for that kernel. */
    function assertDoctorMatchesDoc(series: string, reportText: string): void {
      const report = JSON.parse(reportText) as DoctorReport;
      const expected = parseKernelTable(readKernelDoc()).get(series);
      assert.ok(expected, `docs/kernels.md has no column ${series}`);
      const found = columnOf(series, report);
      for (const [group, cell] of expected.groups) {
        assert.equal(found.groups.get(group)?.state, cell.state, `${group} on ${series}: ${JSON.stringify(found.groups.get(group))}`);
        assert.deepEqual(found.groups.get(group)?.programs, cell.programs, `${group} on ${series}`);
      }
    }

    it('the staged objects load on this kernel as docs/kernels.md says', async () => {
      const cli = path.join(out, 'dist', 'src', 'cli', 'main.js');
      const r = await run(process.execPath, [cli, 'doctor', '-o', 'json', '--cgroup-root', cgroupRoot()], { timeoutMs: 120_000 });
      assertDoctorMatchesDoc(seriesOf(), r.output);
    });

    it('the staged objects load on Debian 6.1 (in a VM) as docs/kernels.md says', async () => {
      const cli = path.join(out, 'dist', 'src', 'cli', 'main.js');
      const lines: string[] = [];
      const result = await runInVm({
        series: '6.1',
        command: `node ${cli} doctor -o json > "$FLOWTEL_VM_RESULTS/doctor.json"`,
        cwd: out,
        env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' },
        timeoutMs: 10 * 60_000,
        onLine: (line) => lines.push(line),
      });
      const report = result.files.get('doctor.json');
      assert.ok(report, `no doctor report from the VM (exit ${result.exitCode}):\n${lines.join('\n')}\n${result.consoleLog.slice(-3000)}`);
      assertDoctorMatchesDoc('6.1', report.toString());
    });

    it('stages dist/, the addon, the BPF objects, package.json and production node_modules only', () => {
      assert.ok(fs.existsSync(path.join(out, 'dist', 'src', 'cli', 'main.js')));
      assert.ok(!fs.existsSync(path.join(out, 'dist', 'test')), 'no tests in the image');
      assert.ok(fs.existsSync(path.join(out, 'native', 'build', 'Release', 'flowtel_bpf.node')));
      const sources = fs.readdirSync(path.join(REPO, 'bpf')).filter((f) => f.endsWith('.bpf.c')).map((f) => f.replace(/\.c$/, '.o'));
      assert.deepEqual(fs.readdirSync(path.join(out, 'bpf', '.output')).sort(), sources.sort(), 'one object per BPF program, no vmlinux.h');
      const pkg = JSON.parse(fs.readFileSync(path.join(out, 'package.json'), 'utf8')) as {
        dependencies: Record<string, string>;
        devDependencies: Record<string, string>;
      };
      for (const dep of Object.keys(pkg.dependencies)) assert.ok(fs.existsSync(path.join(out, 'node_modules', dep, 'package.json')), `runtime dependency ${dep}`);
      // Nothing the lock file marks dev-only (typescript, mocha, node-gyp, the helm package, ...).
      const lock = JSON.parse(fs.readFileSync(path.join(REPO, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
      const devOnly = Object.entries(lock.packages).filter(([p, meta]) => p && meta.dev).map(([p]) => p);
      assert.ok(devOnly.includes('node_modules/typescript'));
      for (const dev of devOnly) assert.ok(!fs.existsSync(path.join(out, dev)), `no dev-only package ${dev}`);
      assert.ok(!fs.existsSync(path.join(out, 'src')), 'no TypeScript sources');
    });

    it('the staged agent validates its config and finds its own BPF objects', async () => {
      const cli = path.join(out, 'dist', 'src', 'cli', 'main.js');
      const r = await run(process.execPath, [cli, 'validate', '--cgroup-root', cgroupRoot()], { timeoutMs: 30_000 });
      assert.equal(r.code, 0, r.output);
      const version = await run(process.execPath, [cli, 'version'], { timeoutMs: 30_000 });
      assert.equal(version.output.trim(), JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).version);
    });

    it('the staged agent runs: loads its BPF objects and serves metrics', async () => {
      const cli = path.join(out, 'dist', 'src', 'cli', 'main.js');
      const [metricsPort, healthPort] = await freePorts(2);
      const child = spawn(
        process.execPath,
        [cli, 'run', '--cgroup-root', cgroupRoot(), '--prometheus-host', '127.0.0.1', '--prometheus-port', String(metricsPort), '--health-port', String(healthPort), '--console', 'false'],
        { env: agentEnv(), stdio: ['ignore', 'ignore', 'pipe'] },
      );
      const killAtExit = () => child.kill('SIGKILL');
      process.once('exit', killAtExit);
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      try {
        await waitFor('the staged agent to run', () => {
          if (child.exitCode !== null) throw new Error(`the staged agent exited with ${child.exitCode}: ${stderr}`);
          return stderr.includes('msg="flowtel running"') ? true : undefined;
        }, 60_000);
        // Every group finds its object in the staged tree (whether this kernel loads it is the e2e tests' concern).
        assert.doesNotMatch(stderr, /No such file or directory/, stderr);
        assert.match(stderr, /groups=\S*tcp-retransmits/, stderr);
        const metrics = await httpGet(`http://127.0.0.1:${metricsPort}/metrics`);
        assert.match(metrics, /^# TYPE flowtel_tcp_retransmits_total counter/m);
      } finally {
        const exited = new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
        process.off('exit', killAtExit);
      }
    });
  });
});
