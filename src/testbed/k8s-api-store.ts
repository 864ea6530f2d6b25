/**
 * The test API server's storage: objects per resource type under one global,
 * monotonically increasing resourceVersion (as etcd numbers its revisions),
 * and a per-type event history that watches resume from. Compaction drops
 * history, so a resourceVersion older than it is "Expired" (410), which is
 * what makes clients relist. Stored versions are immutable and serialise
 * once, so listing 10,000 pods is string joining, not 10,000 JSON.stringify.
 */
import crypto from 'node:crypto';
import { resourceTypeOf, type KubeObject, type ResourceType } from './k8s-api-objects';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** A resourceVersion older than the history kept: the server answers 410 Gone, reason Expired. */
export class ExpiredError extends Error {}

/** A write the store refuses (unknown object, duplicate name): a programming error in the test. */
export class StoreError extends Error {}

/** One immutable version of an object, serialised once when written. */
export class Version {
  /** As list items are sent: without kind and apiVersion (the real server omits them there). */
  readonly itemJson: string;

  constructor(
    readonly key: string,
    readonly object: KubeObject,
    readonly rv: number,
    itemJson?: string,
  ) {
    this.itemJson = itemJson ?? itemJsonOf(object);
  }

  /** As watch events and single GETs send it: kind and apiVersion first. */
  get json(): string {
    return withTypeMeta(this.object, this.itemJson);
  }

  /** A fresh, mutable copy of the object for the test. */
  copy(): KubeObject {
    return JSON.parse(this.json) as KubeObject;
  }

  /** The same content stamped with a later resourceVersion (a DELETED event carries the deletion's RV). */
  at(rv: number): Version {
    const object = { ...this.object, metadata: { ...this.object.metadata, resourceVersion: String(rv) } };
    return new Version(this.key, object, rv);
  }
}

function itemJsonOf(object: KubeObject): string {
  const { kind: _kind, apiVersion: _apiVersion, ...rest } = object;
  return JSON.stringify(rest);
}

function withTypeMeta(typeMeta: { kind: string; apiVersion: string }, itemJson: string): string {
  return `{"kind":${JSON.stringify(typeMeta.kind)},"apiVersion":${JSON.stringify(typeMeta.apiVersion)},${itemJson.slice(1)}`;
}

export interface StoreEvent {
  type: EventType;
  rv: number;
  /** The object after the change; for DELETED its last state at the deletion's resourceVersion. */
  current: Version;
  /** The object before the change (MODIFIED, DELETED). */
  previous?: Version;
}

export type Listener = (event: StoreEvent) => void;

class ResourceState {
  readonly objects = new Map<string, Version>();
  history: StoreEvent[] = [];
  /** Every event with rv > historyStart is in history. */
  historyStart: number;
  readonly listeners = new Set<Listener>();
  private sortedKeys: string[] | undefined;
  private sorted: Version[] | undefined;

  constructor(
    readonly type: ResourceType,
    start: number,
  ) {
    this.historyStart = start;
  }

  /** Objects in key order (etcd's order, which paging relies on); re-sorted only when keys change. */
  current(): Version[] {
    if (!this.sorted) {
      this.sortedKeys ??= [...this.objects.keys()].sort();
      this.sorted = this.sortedKeys.map((k) => this.objects.get(k) as Version);
    }
    return this.sorted;
  }

  changed(keysChanged: boolean): void {
    this.sorted = undefined;
    if (keysChanged) this.sortedKeys = undefined;
  }

  lastEventRv(): number {
    return this.history.length ? this.history[this.history.length - 1].rv : this.historyStart;
  }
}

export interface StoreOptions {
  /** The first resourceVersion handed out is this plus one. */
  initialResourceVersion?: number;
  /** Events kept per resource type before the oldest quarter is dropped (a rolling compaction). */
  maxHistory?: number;
}

/** etcd's key order: namespace, then name. A namespaced object without a namespace is in "default", as on create. */
export function objectKey(type: ResourceType, namespace: string | undefined, name: string): string {
  return type.namespaced ? `${namespace ?? 'default'}/${name}` : name;
}

export class K8sStore {
  private rv: number;
  /** The last global compaction: a type's history is complete from here until it is trimmed. */
  private compactedRv: number;
  private readonly maxHistory: number;
  private readonly states = new Map<ResourceType, ResourceState>();
  /** Consistent snapshots at past resourceVersions, for continue tokens; a few recent ones are kept. */
  private readonly snapshots = new Map<string, Version[]>();

  constructor(options: StoreOptions = {}) {
    this.rv = options.initialResourceVersion ?? 1;
    this.compactedRv = this.rv;
    this.maxHistory = options.maxHistory ?? 200_000;
  }

  get resourceVersion(): number {
    return this.rv;
  }

  private state(type: ResourceType): ResourceState {
    let s = this.states.get(type);
    if (!s) {
      // A type first touched now had no events before: its (empty) history reaches back to the compaction.
      s = new ResourceState(type, this.compactedRv);
      this.states.set(type, s);
    }
    return s;
  }

  /** Stores a new object; fills uid and creationTimestamp if missing. Returns a copy with its resourceVersion. */
  create(obj: KubeObject): KubeObject {
    const { type, key, object } = this.prepare(obj);
    const s = this.state(type);
    if (s.objects.has(key)) throw new StoreError(`${type.plural} "${obj.metadata.name}" already exists`);
    object.metadata.uid ??= crypto.randomUUID();
    object.metadata.creationTimestamp ??= new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    return this.write(s, 'ADDED', key, object);
  }

  /** Replaces an existing object (uid and creationTimestamp are kept, as the server keeps them). */
  update(obj: KubeObject): KubeObject {
    const { type, key, object } = this.prepare(obj);
    const s = this.state(type);
    const old = s.objects.get(key);
    if (!old) throw new StoreError(`${type.plural} "${obj.metadata.name}" not found`);
    object.metadata.uid = old.object.metadata.uid;
    object.metadata.creationTimestamp = old.object.metadata.creationTimestamp;
    return this.write(s, 'MODIFIED', key, object, old);
  }

  /** Creates or updates. */
  apply(obj: KubeObject): KubeObject {
    const { type, key } = this.prepare(obj);
    return this.state(type).objects.has(key) ? this.update(obj) : this.create(obj);
  }

  /** Deletes and returns the object's last state at the deletion's resourceVersion. */
  delete(kind: string, namespace: string | undefined, name: string): KubeObject {
    const type = resourceTypeOf(kind);
    const key = objectKey(type, namespace, name);
    const s = this.state(type);
    const old = s.objects.get(key);
    if (!old) throw new StoreError(`${type.plural} "${name}" not found`);
    this.rv++;
    const gone = old.at(this.rv);
    s.objects.delete(key);
    s.changed(true);
    this.record(s, { type: 'DELETED', rv: this.rv, current: gone, previous: old });
    return gone.copy();
  }

  /** The stored version itself (immutable), for serving. */
  lookup(type: ResourceType, namespace: string | undefined, name: string): Version | undefined {
    return this.state(type).objects.get(objectKey(type, namespace, name));
  }

  get(kind: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const type = resourceTypeOf(kind);
    const v = this.state(type).objects.get(objectKey(type, namespace, name));
    return v?.copy();
  }

  list(kind: string): KubeObject[] {
    return this.state(resourceTypeOf(kind))
      .current()
      .map((v) => v.copy());
  }

  /** Drops all history: watching or paging from any earlier resourceVersion now gets 410 Expired. */
  compact(): void {
    this.compactedRv = this.rv;
    for (const s of this.states.values()) {
      s.history = [];
      s.historyStart = this.rv;
    }
    this.snapshots.clear();
  }

  /** The objects of a type as they were at `rv`, in key order. Throws ExpiredError past the history. */
  snapshot(type: ResourceType, rv: number): Version[] {
    const s = this.state(type);
    if (rv >= s.lastEventRv()) return s.current();
    if (rv < s.historyStart) throw new ExpiredError(`too old resource version: ${rv} (${s.historyStart})`);
    const cacheKey = `${type.plural}@${rv}`;
    const cached = this.snapshots.get(cacheKey);
    if (cached) return cached;
    // Undo, newest first, every event after rv.
    const objects = new Map(s.objects);
    for (let i = s.history.length - 1; i >= 0 && s.history[i].rv > rv; i--) {
      const e = s.history[i];
      if (e.type === 'ADDED') objects.delete(e.current.key);
      else objects.set(e.current.key, e.previous as Version);
    }
    const snap = [...objects.keys()].sort().map((k) => objects.get(k) as Version);
    this.snapshots.set(cacheKey, snap);
    if (this.snapshots.size > 8) this.snapshots.delete(this.snapshots.keys().next().value as string);
    return snap;
  }

  /** Events of a type after `rv`, oldest first. Throws ExpiredError if history no longer reaches back to rv. */
  eventsAfter(type: ResourceType, rv: number): StoreEvent[] {
    const s = this.state(type);
    if (rv < s.historyStart) throw new ExpiredError(`too old resource version: ${rv} (${s.historyStart})`);
    let lo = 0;
    let hi = s.history.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (s.history[mid].rv <= rv) lo = mid + 1;
      else hi = mid;
    }
    return s.history.slice(lo);
  }

  /** Calls `listener` synchronously for every later write to the type; returns the unsubscribe function. */
  subscribe(type: ResourceType, listener: Listener): () => void {
    const s = this.state(type);
    s.listeners.add(listener);
    return () => s.listeners.delete(listener);
  }

  /**
   * A shallow draft of what will be stored: only metadata is rewritten, and the draft is
   * serialised and parsed back before it is kept, so the caller's object is never shared.
   */
  private prepare(obj: KubeObject): { type: ResourceType; key: string; object: KubeObject } {
    if (!obj?.kind || !obj.metadata?.name) throw new StoreError('an object needs kind and metadata.name');
    const type = resourceTypeOf(obj.kind);
    const metadata = { ...obj.metadata };
    if (type.namespaced) metadata.namespace ??= 'default';
    else delete metadata.namespace;
    const object = { ...obj, kind: type.kind, apiVersion: type.apiVersion, metadata };
    return { type, key: objectKey(type, metadata.namespace, metadata.name), object };
  }

  private write(s: ResourceState, type: EventType, key: string, draft: KubeObject, previous?: Version): KubeObject {
    this.rv++;
    draft.metadata.resourceVersion = String(this.rv);
    // One stringify and one parse: the JSON every list and watch reuses, and a private copy to keep.
    const item = itemJsonOf(draft);
    const current = new Version(key, JSON.parse(withTypeMeta(draft, item)) as KubeObject, this.rv, item);
    s.objects.set(key, current);
    s.changed(previous === undefined);
    this.record(s, { type, rv: this.rv, current, ...(previous ? { previous } : {}) });
    return current.copy();
  }

  private record(s: ResourceState, event: StoreEvent): void {
    s.history.push(event);
    if (s.history.length > this.maxHistory) {
      const drop = Math.ceil(this.maxHistory / 4);
      s.historyStart = s.history[drop - 1].rv;
      s.history = s.history.slice(drop);
    }
    for (const listener of [...s.listeners]) listener(event);
  }
}
