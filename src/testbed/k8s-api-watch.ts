/**
 * One watch connection of the test API server: a chunked HTTP response with
 * one JSON WatchEvent per line, as the real server streams them. It replays
 * history after the requested resourceVersion (or the current state as ADDED
 * events when none is given), then follows live writes, turning selector
 * transitions into ADDED/DELETED the way the real watch cache does, and sends
 * BOOKMARKs when the client allowed them.
 */
import type http from 'node:http';
import type { ResourceType } from './k8s-api-objects';
import type { Matcher } from './k8s-api-selectors';
import { ExpiredError, type K8sStore, type StoreEvent, type Version } from './k8s-api-store';

export interface WatchRequest {
  type: ResourceType;
  matcher: Matcher | undefined;
  /** undefined, '' and '0' mean "current state first, then changes". */
  resourceVersion: string | undefined;
  bookmarks: boolean;
  bookmarkIntervalMs: number;
  /** sendInitialEvents=true: current state first, then a BOOKMARK annotated k8s.io/initial-events-end. */
  sendInitialEvents: boolean;
  timeoutSeconds: number | undefined;
}

/** Initial events are written in chunks of this many lines: few syscalls, bounded strings. */
const LINES_PER_WRITE = 500;

export class WatchStream {
  private unsubscribe: (() => void) | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private closed = false;

  constructor(
    private readonly store: K8sStore,
    private readonly request: WatchRequest,
    readonly res: http.ServerResponse,
    private readonly onClose: (w: WatchStream) => void,
  ) {}

  /** Writes the response head and the backlog, then follows the store. Synchronous: no write can slip between. */
  begin(): void {
    const { type, resourceVersion, bookmarks } = this.request;
    this.res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
    // Clients wait for the head before they read events; Node would hold it back until the first write.
    this.res.flushHeaders();
    this.res.on('close', () => this.close());
    const fromState = this.request.sendInitialEvents || !resourceVersion || resourceVersion === '0';
    if (fromState) {
      this.writeLines(
        this.store
          .snapshot(type, this.store.resourceVersion)
          .filter((v) => this.matches(v))
          .map((v) => line('ADDED', v.json)),
      );
      if (this.request.sendInitialEvents && bookmarks) this.bookmark(true);
    } else {
      let backlog: StoreEvent[];
      try {
        backlog = this.store.eventsAfter(type, Number(resourceVersion));
      } catch (err) {
        if (!(err instanceof ExpiredError)) throw err;
        // The real server answers 200 and an ERROR event carrying a 410 Status, then ends the stream.
        this.res.end(line('ERROR', JSON.stringify(expiredStatus(err.message))));
        return;
      }
      this.writeLines(backlog.map((e) => this.translate(e)).filter((l): l is string => l !== undefined));
    }
    this.unsubscribe = this.store.subscribe(type, (e) => this.deliver(e));
    if (bookmarks) this.timers.push(setInterval(() => this.bookmark(false), this.request.bookmarkIntervalMs));
    if (this.request.timeoutSeconds !== undefined && this.request.timeoutSeconds > 0) {
      this.timers.push(setTimeout(() => this.end(), this.request.timeoutSeconds * 1000));
    }
  }

  /** A clean end of the stream (what a server-side timeout looks like to the client). */
  end(): void {
    if (!this.res.writableEnded) this.res.end();
    this.close();
  }

  /** Ends the stream with an ERROR event carrying 410 Expired, as a server whose watch cache fell behind does. */
  expire(): void {
    if (!this.res.writableEnded) this.res.end(line('ERROR', JSON.stringify(expiredStatus('too old resource version'))));
    this.close();
  }

  /** Kills the connection without the final chunk: the client sees a broken stream. */
  destroy(): void {
    this.res.socket?.destroy();
    this.close();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
    for (const t of this.timers) clearInterval(t);
    this.onClose(this);
  }

  private matches(v: Version): boolean {
    return this.request.matcher === undefined || this.request.matcher(v.object);
  }

  private deliver(e: StoreEvent): void {
    const l = this.translate(e);
    if (l !== undefined && !this.res.writableEnded) this.res.write(l);
  }

  /** The event this watcher sees, if any: an object entering or leaving the selection is ADDED or DELETED. */
  private translate(e: StoreEvent): string | undefined {
    if (this.request.matcher === undefined) return line(e.type, e.current.json);
    if (e.type === 'ADDED') return this.matches(e.current) ? line('ADDED', e.current.json) : undefined;
    if (e.type === 'DELETED') return this.matches(e.previous as Version) ? line('DELETED', e.current.json) : undefined;
    const was = this.matches(e.previous as Version);
    const is = this.matches(e.current);
    if (was && is) return line('MODIFIED', e.current.json);
    if (is) return line('ADDED', e.current.json);
    // Leaving the selection: the old state, stamped with this event's resourceVersion.
    if (was) return line('DELETED', (e.previous as Version).at(e.rv).json);
    return undefined;
  }

  private bookmark(initialEventsEnd: boolean): void {
    if (this.res.writableEnded) return;
    const { kind, apiVersion } = this.request.type;
    const metadata: Record<string, unknown> = { resourceVersion: String(this.store.resourceVersion) };
    if (initialEventsEnd) metadata.annotations = { 'k8s.io/initial-events-end': 'true' };
    this.res.write(line('BOOKMARK', JSON.stringify({ kind, apiVersion, metadata })));
  }

  private writeLines(lines: string[]): void {
    for (let i = 0; i < lines.length; i += LINES_PER_WRITE) this.res.write(lines.slice(i, i + LINES_PER_WRITE).join(''));
  }
}

function line(type: string, objectJson: string): string {
  return `{"type":"${type}","object":${objectJson}}\n`;
}

export function expiredStatus(message: string): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'Expired', code: 410 };
}
