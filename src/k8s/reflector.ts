/**
 * Keeps an in-memory copy of one resource, reduced to the fields we use: LIST,
 * then WATCH from the list's resourceVersion with bookmarks. A watch that ends
 * resumes from the last resourceVersion seen; "410 Gone" (history compacted)
 * relists; any other failure (API down, RBAC) retries with exponential
 * backoff. Every step is counted so it shows in self-metrics.
 */
import type { AgentLog } from '../util/log';
import { KubeApiError, type KubeClient } from './kube-client';

export interface ReflectorOptions<T> {
  /** Resource name for logs and metrics ("pods"). */
  resource: string;
  path: string;
  fieldSelector?: string;
  /** Reduces a raw object to what we keep; undefined drops it. */
  transform(raw: Record<string, unknown>): T | undefined;
  onUpsert?(key: string, value: T): void;
  onDelete?(key: string, value: T): void;
  client: KubeClient;
  log: AgentLog;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface ReflectorStats {
  lists: number;
  watches: number;
  relists410: number;
  errors: number;
  synced: boolean;
  objects: number;
  lastError?: string;
}

/**
 * An object's identity in the cache: its uid. By name, a pod deleted and
 * recreated under the same name while the watch was away (a StatefulSet pod)
 * would look updated on the relist, and the old pod would never be deleted.
 * The name is the fallback for objects without a uid.
 */
export function objectKey(raw: Record<string, unknown>): string | undefined {
  const meta = raw.metadata as { uid?: string; namespace?: string; name?: string } | undefined;
  if (meta?.uid) return meta.uid;
  if (!meta?.name) return undefined;
  return meta.namespace ? `${meta.namespace}/${meta.name}` : meta.name;
}

export class Reflector<T> {
  readonly items = new Map<string, T>();
  readonly stats: ReflectorStats = { lists: 0, watches: 0, relists410: 0, errors: 0, synced: false, objects: 0 };
  private resourceVersion = '';
  private stopWatch: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private backoffMs: number;
  private firstSync: Promise<void>;
  private resolveFirstSync!: () => void;

  constructor(private readonly options: ReflectorOptions<T>) {
    this.backoffMs = options.minBackoffMs ?? 500;
    this.firstSync = new Promise((resolve) => (this.resolveFirstSync = resolve));
  }

  /** The resource name ("pods"), for stats and logs. */
  get resource(): string {
    return this.options.resource;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.listAndWatch();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.stopWatch?.();
    this.stopWatch = undefined;
  }

  /** Resolves after the first successful list. */
  synced(): Promise<void> {
    return this.firstSync;
  }

  private get query(): Record<string, string> {
    return this.options.fieldSelector ? { fieldSelector: this.options.fieldSelector } : {};
  }

  private async listAndWatch(): Promise<void> {
    if (this.stopped) return;
    const { client, resource, path, transform } = this.options;
    try {
      const page = await client.list(path, resource, this.query, (item) => {
        const raw = item as Record<string, unknown>;
        const key = objectKey(raw);
        return key ? { key, value: transform(raw) } : undefined;
      });
      this.stats.lists++;
      // Applied after the last page, so a relist replaces the cache in one step.
      const seen = new Set<string>();
      for (const entry of page.items) {
        if (!entry || entry.value === undefined) continue;
        seen.add(entry.key);
        this.upsert(entry.key, entry.value);
      }
      for (const [key, value] of this.items) {
        if (!seen.has(key)) this.remove(key, value);
      }
      this.resourceVersion = page.resourceVersion;
      if (this.stats.lastError) this.options.log.info(`kubernetes ${resource}: synced again`, { resource, objects: this.items.size });
      this.stats.lastError = undefined;
      this.stats.synced = true;
      this.resolveFirstSync();
      this.backoffMs = this.options.minBackoffMs ?? 500;
      await this.watch();
    } catch (err) {
      this.fail(err);
    }
  }

  private async watch(): Promise<void> {
    if (this.stopped) return;
    const { client, path, transform } = this.options;
    this.stats.watches++;
    // client.watch resolves even when the request failed (after calling `done`): only an open watch means in sync.
    let ended = false;
    this.stopWatch = await client.watch(
      path,
      { ...this.query, allowWatchBookmarks: true, resourceVersion: this.resourceVersion },
      (type, raw) => {
        const version = (raw.metadata as { resourceVersion?: string } | undefined)?.resourceVersion;
        if (type === 'ERROR') {
          this.onWatchError(raw);
          return;
        }
        if (version) this.resourceVersion = version;
        if (type === 'BOOKMARK') return;
        const key = objectKey(raw);
        if (!key) return;
        if (type === 'DELETED') {
          const old = this.items.get(key);
          if (old !== undefined) this.remove(key, old);
          return;
        }
        const value = transform(raw);
        if (value !== undefined) this.upsert(key, value);
      },
      (err) => {
        ended = true;
        this.stopWatch = undefined;
        if (this.stopped) return;
        if (err) this.fail(err);
        else void this.watch(); // server closed the watch: resume from the last resourceVersion
      },
    );
    if (this.stopped) {
      // stop() ran while the watch was being opened.
      this.stopWatch?.();
      this.stopWatch = undefined;
      return;
    }
    if (ended) {
      this.stopWatch = undefined;
      return;
    }
    if (this.stats.lastError) {
      // Resumed from our resourceVersion after a failure: nothing was missed, so we are in sync again.
      this.options.log.info(`kubernetes ${this.options.resource}: synced again`, { resource: this.options.resource, objects: this.items.size });
      this.stats.lastError = undefined;
      this.backoffMs = this.options.minBackoffMs ?? 500;
    }
  }

  private onWatchError(status: Record<string, unknown>): void {
    const code = Number((status as { code?: number }).code ?? 0);
    this.stopWatch?.();
    this.stopWatch = undefined;
    if (code === 410) {
      // History compacted: our resourceVersion is too old to resume from.
      this.stats.relists410++;
      this.options.log.info('kubernetes watch expired (410), relisting', { resource: this.options.resource });
      this.resourceVersion = '';
      void this.listAndWatch();
      return;
    }
    this.fail(
      new KubeApiError(
        code,
        'watch',
        this.options.resource,
        `watch ${this.options.resource}: ${String((status as { message?: string }).message ?? 'error event')}`,
      ),
    );
  }

  private fail(err: unknown): void {
    if (this.stopped) return;
    this.stats.errors++;
    let message = err instanceof Error ? err.message : String(err);
    if (err instanceof KubeApiError && err.status === 403) {
      // The grant names the API resource ("pods"), not this reflector's label ("pods (cluster)").
      const apiResource = this.options.path.split('/').pop();
      message = `missing RBAC permission: cannot ${err.verb} ${err.resource} (grant "${err.verb}" on "${apiResource}" to the agent's service account): ${err.message}`;
    }
    if (message !== this.stats.lastError) {
      // One line per distinct failure: a long outage does not flood the log.
      this.options.log.warn(`kubernetes ${this.options.resource}: ${message.split('\n')[0]}; attributing without it, retrying in ${this.backoffMs} ms`, {
        resource: this.options.resource,
      });
    }
    this.stats.lastError = message;
    this.timer = setTimeout(() => {
      // Resume the watch when we still have a resourceVersion; a 410 then makes us relist.
      if (this.resourceVersion) void this.watch().catch((e) => this.fail(e));
      else void this.listAndWatch();
    }, this.backoffMs);
    this.timer.unref();
    this.backoffMs = Math.min(this.backoffMs * 2, this.options.maxBackoffMs ?? 30_000);
  }

  private upsert(key: string, value: T): void {
    this.items.set(key, value);
    this.stats.objects = this.items.size;
    this.options.onUpsert?.(key, value);
  }

  private remove(key: string, value: T): void {
    this.items.delete(key);
    this.stats.objects = this.items.size;
    this.options.onDelete?.(key, value);
  }
}
