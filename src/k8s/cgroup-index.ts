/**
 * Maps cgroup v2 ids to paths. A cgroup's id is the inode number of its
 * directory, so one walk of the cgroup tree indexes every cgroup. New
 * cgroups appear between walks: a lookup miss triggers a re-walk, at most
 * once per `minRescanIntervalMs`, so a burst of unknown ids costs one walk.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface CgroupIndexOptions {
  root: string;
  minRescanIntervalMs?: number;
  /** isLive() re-walks when the last walk is older than this, so removals are noticed. */
  staleAfterMs?: number;
  now?: () => number;
}

export class CgroupIndex {
  private readonly root: string;
  private readonly minRescanIntervalMs: number;
  private readonly staleAfterMs: number;
  private readonly now: () => number;
  private byId = new Map<bigint, string>();
  private lastScanAt = -Infinity;
  private scans = 0;

  constructor(options: CgroupIndexOptions) {
    this.root = options.root;
    this.minRescanIntervalMs = options.minRescanIntervalMs ?? 1000;
    this.staleAfterMs = options.staleAfterMs ?? 15_000;
    this.now = options.now ?? Date.now;
  }

  /** Path relative to the cgroup root ('' for the root), or undefined if no live cgroup has this id. */
  pathOf(id: bigint): string | undefined {
    const known = this.byId.get(id);
    if (known !== undefined) return known;
    if (this.now() - this.lastScanAt >= this.minRescanIntervalMs) {
      this.rescan();
      return this.byId.get(id);
    }
    return undefined;
  }

  /** True if the id belonged to a live cgroup at the last walk (at most staleAfterMs old). */
  isLive(id: bigint): boolean {
    if (this.now() - this.lastScanAt >= this.staleAfterMs) this.rescan();
    return this.byId.has(id);
  }

  /**
   * The id of a cgroup given as /proc/<pid>/cgroup shows it. Inside a cgroup
   * namespace (a container) paths are relative to the agent's own cgroup
   * ("/../../kubepods.slice/..."); the part after the "..", matched against
   * the walked tree, still names one cgroup.
   */
  idOfProcPath(procPath: string): bigint | undefined {
    const parts = procPath.split('/').filter((p) => p.length > 0);
    const relative = parts.includes('..');
    const wanted = parts.filter((p) => p !== '..').join('/');
    for (let attempt = 0; attempt < 2; attempt++) {
      for (const [id, path] of this.byId) {
        if (relative ? path === wanted || path.endsWith(`/${wanted}`) : path === wanted) return id;
      }
      if (this.now() - this.lastScanAt < this.minRescanIntervalMs) break;
      this.rescan();
    }
    return undefined;
  }

  get scanCount(): number {
    return this.scans;
  }

  rescan(): void {
    const next = new Map<bigint, string>();
    const walk = (dir: string, rel: string): void => {
      let stat: fs.BigIntStats;
      try {
        stat = fs.statSync(dir, { bigint: true });
      } catch {
        return; // removed while walking
      }
      next.set(stat.ino, rel);
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        if (entry.isDirectory()) walk(path.join(dir, entry.name), rel ? `${rel}/${entry.name}` : entry.name);
      }
    };
    walk(this.root, '');
    this.byId = next;
    this.lastScanAt = this.now();
    this.scans++;
  }
}
