/**
 * Boots a Debian kernel under qemu (TCG: nested KVM hangs on our machines)
 * with this machine's root as the read-only lower layer of the guest's root,
 * runs one shell command in it and streams the command's output back line by
 * line. The guest sees the same files as the host (the built agent, node,
 * iperf3, nft), so a test subset runs there exactly as it runs here, on
 * another kernel.
 *
 * Pieces: scripts/debian-kernel.sh fetches and caches the kernel package,
 * make-initramfs.sh builds the initramfs, initramfs-init.sh mounts the root
 * and guest-init.sh runs the command.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const HERE = path.resolve(__dirname, '..', '..', '..', 'test', 'kernels');
const REPO = path.resolve(HERE, '..', '..');

export interface VmCommand {
  /** Kernel series: 5.10, 6.1 or 6.12 (scripts/debian-kernel.sh series). */
  series: string;
  /** A bash script, run in `cwd` inside the guest. */
  command: string;
  cwd: string;
  /** Environment of the command (the guest starts with an empty one). */
  env: Record<string, string>;
  /** The guest is killed after this long; the result then has no exit code. */
  timeoutMs: number;
  /** Called with every line the command prints. */
  onLine: (line: string) => void;
  cpus?: number;
  memoryMiB?: number;
}

export interface VmResult {
  series: string;
  /** The guest kernel's release (uname -r). */
  release: string;
  /** The command's exit code; null when the guest died or timed out before it ended. */
  exitCode: number | null;
  timedOut: boolean;
  durationMs: number;
  /** The guest kernel's console (boot messages, warnings, oopses), for a run that went wrong. */
  consoleLog: string;
  /** Files the command wrote to $FLOWTEL_VM_RESULTS, by name. */
  files: Map<string, Buffer>;
}

// Guests a failed or interrupted run left behind must not outlive it.
const guests = new Set<ChildProcess>();
const killGuests = () => {
  for (const guest of guests) guest.kill('SIGKILL');
};
process.on('exit', killGuests);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killGuests();
    process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
  });
}

/** Runs a command of this repository's scripts and returns what it printed; throws with its stderr on failure. */
function script(file: string, args: string[]): string {
  const run = spawnSync(path.join(REPO, file), args, { encoding: 'utf8', env: process.env });
  if (run.status !== 0) throw new Error(`${file} ${args.join(' ')} failed (${run.status ?? run.signal}): ${run.stderr.trim()}`);
  return run.stdout.trim();
}

/** Downloads (once) and unpacks the series' newest kernel, builds its initramfs; returns their paths. */
export function prepareKernel(series: string): { dir: string; release: string; kernel: string; initramfs: string } {
  const dir = script('scripts/debian-kernel.sh', ['fetch', series]);
  const release = fs.readFileSync(path.join(dir, 'RELEASE'), 'utf8').trim();
  const initramfs = script('test/kernels/make-initramfs.sh', [dir]);
  return { dir, release, kernel: path.join(dir, 'boot', `vmlinuz-${release}`), initramfs };
}

export async function runInVm(command: VmCommand): Promise<VmResult> {
  const started = Date.now();
  const kernel = prepareKernel(command.series);
  const results = fs.mkdtempSync(path.join(os.tmpdir(), `flowtel-vm-${command.series}-`));
  try {
    // The guest's build config, which its /boot (the host's) does not have: tests take CONFIG_HZ from it.
    fs.copyFileSync(path.join(kernel.dir, 'boot', `config-${kernel.release}`), path.join(results, 'kernel-config'));
    const env = {
      NO_COLOR: '1',
      NODE_DISABLE_COLORS: '1',
      ...command.env,
      FLOWTEL_VM: command.series,
      FLOWTEL_VM_CWD: command.cwd,
      FLOWTEL_VM_RESULTS: '/flowtel-vm/out',
      FLOWTEL_VM_KERNEL_CONFIG: '/flowtel-vm/kernel-config',
    };
    fs.mkdirSync(path.join(results, 'out'));
    fs.writeFileSync(path.join(results, 'command'), `${command.command}\n`);
    fs.writeFileSync(
      path.join(results, 'env'),
      Object.entries(env)
        .map(([k, v]) => `${k}=${shellQuote(v)}\n`)
        .join(''),
    );
    const consoleFile = path.join(results, 'console.log');
    const append = [
      'console=ttyS0',
      'quiet',
      'loglevel=4',
      'panic=-1',
      'rdinit=/init',
      `flowtel.release=${kernel.release}`,
      `flowtel.init=${path.join(HERE, 'guest-init.sh')}`,
    ].join(' ');
    const args = [
      '-accel',
      'tcg,thread=multi',
      '-cpu',
      'max',
      '-smp',
      String(command.cpus ?? 2),
      '-m',
      `${command.memoryMiB ?? 4096}M`,
      '-display',
      'none',
      '-monitor',
      'none',
      '-no-reboot',
      '-nodefaults',
      '-kernel',
      kernel.kernel,
      '-initrd',
      kernel.initramfs,
      '-append',
      append,
      '-serial',
      `file:${consoleFile}`,
      '-serial',
      'stdio',
      '-virtfs',
      'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
      '-virtfs',
      `local,path=${path.join(kernel.dir, 'lib', 'modules', kernel.release)},mount_tag=modules,security_model=none,readonly=on`,
      '-virtfs',
      `local,path=${results},mount_tag=results,security_model=none`,
    ];
    const guest = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    guests.add(guest);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      guest.kill('SIGKILL');
    }, command.timeoutMs);
    let pending = '';
    const emit = (text: string) => {
      pending += text.replace(/\r/g, '');
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        command.onLine(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
      }
    };
    guest.stdout.setEncoding('utf8').on('data', emit);
    let qemuErrors = '';
    guest.stderr.setEncoding('utf8').on('data', (text: string) => (qemuErrors += text));
    await new Promise<void>((resolve) => guest.once('exit', () => resolve()));
    clearTimeout(timer);
    guests.delete(guest);
    if (pending) command.onLine(pending);
    if (qemuErrors.trim()) command.onLine(`qemu: ${qemuErrors.trim()}`);
    const exitFile = path.join(results, 'exit-code');
    const exitCode = fs.existsSync(exitFile) ? Number(fs.readFileSync(exitFile, 'utf8').trim()) : null;
    const files = new Map<string, Buffer>();
    for (const name of fs.readdirSync(path.join(results, 'out'))) files.set(name, fs.readFileSync(path.join(results, 'out', name)));
    return {
      series: command.series,
      release: kernel.release,
      exitCode,
      timedOut,
      durationMs: Date.now() - started,
      consoleLog: fs.existsSync(consoleFile) ? fs.readFileSync(consoleFile, 'utf8') : '',
      files,
    };
  } finally {
    fs.rmSync(results, { recursive: true, force: true });
  }
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
