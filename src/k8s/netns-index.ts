/**
 * Maps network-namespace inodes to the cgroup of a process living in them,
 * for events that have no socket (a packet dropped before socket lookup, a
 * reset answering a closed port): on a Kubernetes node every pod netns holds
 * at least the pod's sandbox ("pause") process, whose cgroup names the pod.
 * Built by one pass over /proc; a miss re-walks at most once per interval.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface NetnsIndexOptions {
  procRoot?: string;
  minRescanIntervalMs?: number;
  staleAfterMs?: number;
  now?: () => number;
}

export class NetnsIndex {
  private readonly procRoot: string;
  private readonly minRescanIntervalMs: number;
  private readonly staleAfterMs: number;
  private readonly now: () => number;
  /** netns inode → cgroup v2 paths of its processes (as /proc/<pid>/cgroup shows them). */
  private byNetns = new Map<number, string[]>();
  private hostNetns = 0;
  private lastScanAt = -Infinity;
  private denied = 0;

  constructor(options: NetnsIndexOptions = {}) {
    this.procRoot = options.procRoot ?? '/proc';
    this.minRescanIntervalMs = options.minRescanIntervalMs ?? 1000;
    this.staleAfterMs = options.staleAfterMs ?? 15_000;
    this.now = options.now ?? Date.now;
  }

  /** Cgroup paths of the processes in a netns, or undefined when no process lives there. */
  cgroupsOf(netnsIno: number): string[] | undefined {
    const known = this.byNetns.get(netnsIno);
    if (known || this.now() - this.lastScanAt < this.minRescanIntervalMs) return known;
    this.rescan();
    return this.byNetns.get(netnsIno);
  }

  isHost(netnsIno: number): boolean {
    if (this.lastScanAt === -Infinity) this.rescan();
    return netnsIno === this.hostNetns;
  }

  isLive(netnsIno: number): boolean {
    if (this.now() - this.lastScanAt >= this.staleAfterMs) this.rescan();
    return this.byNetns.has(netnsIno);
  }

  /**
   * Processes of the last scan whose network namespace the agent may not
   * read: without CAP_SYS_PTRACE only its own user's processes are readable.
   */
  get unreadableProcesses(): number {
    return this.denied;
  }

  rescan(): void {
    const next = new Map<number, string[]>();
    let denied = 0;
    for (const entry of fs.readdirSync(this.procRoot)) {
      if (!/^\d+$/.test(entry)) continue;
      const dir = path.join(this.procRoot, entry);
      try {
        const ino = netnsInode(fs.readlinkSync(path.join(dir, 'ns', 'net')));
        if (ino === undefined) {
          // Linux 5.10 answers a reader without ptrace access to the process with an empty link, not EACCES.
          denied++;
          continue;
        }
        const cgroup = unifiedCgroupPath(fs.readFileSync(path.join(dir, 'cgroup'), 'utf8'));
        if (cgroup === undefined) continue;
        const paths = next.get(ino);
        if (!paths) next.set(ino, [cgroup]);
        else if (!paths.includes(cgroup)) paths.push(cgroup);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EACCES' || code === 'EPERM') denied++;
        // else: the process exited while we looked
      }
    }
    this.denied = denied;
    try {
      this.hostNetns = netnsInode(fs.readlinkSync(path.join(this.procRoot, '1', 'ns', 'net'))) ?? 0;
    } catch {
      this.hostNetns = 0;
    }
    this.byNetns = next;
    this.lastScanAt = this.now();
  }
}

/** "net:[4026531840]" → 4026531840 */
export function netnsInode(link: string): number | undefined {
  const m = /^net:\[(\d+)\]$/.exec(link);
  return m ? Number(m[1]) : undefined;
}

/** The cgroup v2 line ("0::/path") of /proc/<pid>/cgroup. */
export function unifiedCgroupPath(text: string): string | undefined {
  const line = text.split('\n').find((l) => l.startsWith('0::'));
  return line ? line.slice(3) : undefined;
}
