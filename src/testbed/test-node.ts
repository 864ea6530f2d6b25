/**
 * A Kubernetes node built from real kernel parts (DESIGN §7): each pod is a
 * network namespace with a veth into a bridge (as a CNI plugin wires it)
 * and a cgroup v2 directory named the way kubelet names it, so the agent
 * sees what it would see on a node. The bridge lives in its own "node"
 * namespace, so no address or route is added to the host, and all traffic
 * stays inside namespaces this module created.
 *
 * Everything is named flowtel-test-<pid>-<tag>; destroy() removes it, and
 * sweepStale() removes what a crashed run left behind.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { kubeletCgroupPath, type QosClass } from '../k8s/cgroup-path';
import { mustRun, runCommand, startProcess } from './exec';
import type { ChildProcess } from 'node:child_process';

const NETNS_DIR = '/var/run/netns';
const PREFIX = 'flowtel-test-';

export interface TestPodSpec {
  name: string;
  qosClass?: QosClass;
}

export interface TestPod {
  name: string;
  uid: string;
  containerId: string;
  netns: string;
  ip: string;
  /** Absolute path of the container cgroup. */
  cgroupDir: string;
  /** Cgroup v2 id (inode of the cgroup directory). */
  cgroupId: bigint;
  /** Interface name of the pod's veth on the bridge side, in the node namespace. */
  hostVeth: string;
}

export interface TestNodeOptions {
  cgroupRoot: string;
  pods: TestPodSpec[];
  /** /24 prefix for pod addresses, e.g. "10.231.7". */
  subnet?: string;
}

export class TestNode {
  readonly pods = new Map<string, TestPod>();
  private readonly children = new Set<ChildProcess>();
  private destroyed = false;

  private nextHost = 2;
  private subnet = '';

  private constructor(
    readonly tag: string,
    readonly nodeNetns: string,
    readonly cgroupBase: string,
  ) {}

  static async create(options: TestNodeOptions): Promise<TestNode> {
    const tag = `${process.pid}-${randomBytes(3).toString('hex')}`;
    const node = new TestNode(tag, `${PREFIX}${tag}-node`, path.join(options.cgroupRoot, `${PREFIX}${tag}.slice`));
    node.subnet = options.subnet ?? `10.${200 + (process.pid % 50)}.${randomBytes(1)[0]}`;
    try {
      await mustRun('ip', ['netns', 'add', node.nodeNetns]);
      await node.inNode('ip', ['link', 'add', 'br0', 'type', 'bridge']);
      await node.inNode('ip', ['link', 'set', 'br0', 'up']);
      await node.inNode('ip', ['link', 'set', 'lo', 'up']);
      fs.mkdirSync(node.cgroupBase);
      for (const spec of options.pods) await node.createPod(spec);
    } catch (err) {
      await node.destroy();
      throw err;
    }
    return node;
  }

  pod(name: string): TestPod {
    const pod = this.pods.get(name);
    if (!pod) throw new Error(`test node has no pod ${name}`);
    return pod;
  }

  /** Runs a command in the node namespace (where the bridge and host veths are). */
  inNode(cmd: string, args: string[], input?: string): Promise<string> {
    return mustRun('ip', ['netns', 'exec', this.nodeNetns, cmd, ...args], input === undefined ? {} : { input });
  }

  /** Runs a command to completion inside a pod: its network namespace and its cgroup. */
  async inPod(pod: string, cmd: string, args: string[], options: { timeoutMs?: number; input?: string } = {}) {
    return runCommand('sh', this.podShellArgs(this.pod(pod), cmd, args), options);
  }

  /** Starts a long-running process inside a pod; destroy() kills it if still running. */
  spawnInPod(pod: string, cmd: string, args: string[]): ChildProcess {
    const child = startProcess('sh', this.podShellArgs(this.pod(pod), cmd, args));
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Reads /proc/net/dev counters of an interface inside a namespace. */
  async interfaceCounters(netns: string, ifname: string): Promise<{ rxBytes: number; rxPackets: number; txBytes: number; txPackets: number }> {
    const text = await mustRun('ip', ['netns', 'exec', netns, 'cat', '/proc/net/dev']);
    const line = text.split('\n').find((l) => l.trim().startsWith(`${ifname}:`));
    if (!line) throw new Error(`no interface ${ifname} in ${netns}`);
    const f = line.split(':')[1].trim().split(/\s+/).map(Number);
    return { rxBytes: f[0], rxPackets: f[1], txBytes: f[8], txPackets: f[9] };
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const child of this.children) child.kill('SIGKILL');
    killCgroupTree(this.cgroupBase);
    for (const pod of this.pods.values()) await runCommand('ip', ['netns', 'delete', pod.netns]);
    await runCommand('ip', ['netns', 'delete', this.nodeNetns]);
    await removeCgroupTree(this.cgroupBase);
  }

  /** Removes namespaces and cgroups of earlier runs whose process is gone. */
  static async sweepStale(cgroupRoot: string): Promise<string[]> {
    const removed: string[] = [];
    const ownerAlive = (name: string): boolean => {
      const pid = Number(name.slice(PREFIX.length).split('-')[0]);
      return Number.isInteger(pid) && pid > 0 && fs.existsSync(`/proc/${pid}`);
    };
    const names = fs.existsSync(NETNS_DIR) ? fs.readdirSync(NETNS_DIR) : [];
    for (const ns of names.filter((n) => n.startsWith(PREFIX) && !ownerAlive(n))) {
      await runCommand('ip', ['netns', 'delete', ns]);
      removed.push(ns);
    }
    for (const dir of fs.readdirSync(cgroupRoot).filter((n) => n.startsWith(PREFIX) && !ownerAlive(n))) {
      const full = path.join(cgroupRoot, dir);
      killCgroupTree(full);
      await removeCgroupTree(full);
      removed.push(full);
    }
    return removed;
  }

  /** Adds a pod to the running node (the next address of the subnet). */
  async createPod(spec: TestPodSpec): Promise<TestPod> {
    const ip = `${this.subnet}.${this.nextHost++}`;
    const uid = randomUUID();
    const containerId = randomBytes(32).toString('hex');
    const relative = kubeletCgroupPath({ driver: 'systemd', qosClass: spec.qosClass ?? 'burstable', podUid: uid, containerId, runtime: 'containerd' });
    const cgroupDir = path.join(this.cgroupBase, relative);
    fs.mkdirSync(cgroupDir, { recursive: true });
    const netns = `${PREFIX}${this.tag}-${spec.name}`;
    const hostVeth = `veth-${spec.name}`.slice(0, 15);
    await mustRun('ip', ['netns', 'add', netns]);
    const pod: TestPod = { name: spec.name, uid, containerId, netns, ip, cgroupDir, cgroupId: fs.statSync(cgroupDir, { bigint: true }).ino, hostVeth };
    this.pods.set(spec.name, pod);
    await mustRun('ip', ['link', 'add', 'eth0', 'netns', netns, 'type', 'veth', 'peer', 'name', hostVeth, 'netns', this.nodeNetns]);
    await this.inNode('ip', ['link', 'set', hostVeth, 'master', 'br0']);
    await this.inNode('ip', ['link', 'set', hostVeth, 'up']);
    const inNs = (...args: string[]) => mustRun('ip', ['netns', 'exec', netns, ...args]);
    await inNs('ip', 'addr', 'add', `${ip}/24`, 'dev', 'eth0');
    await inNs('ip', 'link', 'set', 'eth0', 'up');
    await inNs('ip', 'link', 'set', 'lo', 'up');
    this.startSandbox(pod, relative);
    return pod;
  }

  /** Removes a pod as kubelet would: its processes, its network namespace, its cgroups. */
  async removePod(name: string): Promise<void> {
    const pod = this.pod(name);
    this.pods.delete(name);
    const podCgroup = path.dirname(pod.cgroupDir);
    killCgroupTree(podCgroup);
    await runCommand('ip', ['netns', 'delete', pod.netns]);
    await removeCgroupTree(podCgroup);
  }

  /**
   * Like kubelet's sandbox ("pause") container: a process that lives in the
   * pod's netns for the pod's whole life, in a sibling container cgroup.
   */
  private startSandbox(pod: TestPod, containerPath: string): void {
    const sandboxDir = path.join(this.cgroupBase, path.dirname(containerPath), `cri-containerd-${randomBytes(32).toString('hex')}.scope`);
    fs.mkdirSync(sandboxDir);
    const child = startProcess('sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$1" sleep infinity', sandboxDir, pod.netns]);
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
  }

  /** sh joins the pod cgroup first, then execs into the namespace: sockets are born in the pod's cgroup. */
  private podShellArgs(pod: TestPod, cmd: string, args: string[]): string[] {
    return ['-c', 'echo $$ > "$0/cgroup.procs" && ns="$1" && shift && exec ip netns exec "$ns" "$@"', pod.cgroupDir, pod.netns, cmd, ...args];
  }
}

function killCgroupTree(dir: string): void {
  // cgroup.kill (Linux 5.14+) SIGKILLs every process in the subtree.
  try {
    fs.writeFileSync(path.join(dir, 'cgroup.kill'), '1');
  } catch {
    /* absent or already removed */
  }
}

async function removeCgroupTree(dir: string): Promise<void> {
  if (!fs.existsSync(dir)) return;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) await removeCgroupTree(path.join(dir, entry.name));
  }
  // Killed processes leave the cgroup asynchronously: retry briefly.
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  fs.rmdirSync(dir);
}
