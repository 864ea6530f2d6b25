/**
 * The few API calls the agent makes: paged LIST and streaming WATCH, on
 * @kubernetes/client-node's KubeConfig (in-cluster service account or a
 * kubeconfig file) and its Watch. Lists are fetched as raw JSON so objects
 * are reduced to the fields we keep before anything else allocates them.
 */
import https from 'node:https';
import http from 'node:http';
import { KubeConfig, Watch } from '@kubernetes/client-node';
import { readInputFile } from '../config/input-file';

export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly verb: string,
    readonly resource: string,
    message: string,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
}

export interface ListPage<T> {
  items: T[];
  resourceVersion: string;
}

export type WatchHandler = (type: string, object: Record<string, unknown>) => void;

/** A kubeconfig with many contexts and embedded certificates is tens of KiB. */
const MAX_KUBECONFIG_BYTES = 4 << 20;

export class KubeClient {
  private readonly watcher: Watch;

  constructor(readonly config: KubeConfig) {
    this.watcher = new Watch(config);
  }

  /** In-cluster when the service account is mounted, else the kubeconfig file given or $KUBECONFIG. */
  static load(kubeconfigPath?: string): KubeClient {
    const kc = new KubeConfig();
    if (kubeconfigPath) {
      // Refuses a FIFO or a device before the client library would block on it or read it without end.
      readInputFile(kubeconfigPath, {
        field: 'kubernetes.kubeconfig',
        source: 'the configuration',
        what: 'a readable kubeconfig file',
        maxBytes: MAX_KUBECONFIG_BYTES,
      });
      kc.loadFromFile(kubeconfigPath);
    } else if (process.env.KUBERNETES_SERVICE_HOST && !process.env.KUBECONFIG) kc.loadFromCluster();
    else kc.loadFromDefault();
    if (!kc.getCurrentCluster()) throw new Error(`kubeconfig ${kubeconfigPath ?? process.env.KUBECONFIG ?? '(default)'} has no current cluster`);
    return new KubeClient(kc);
  }

  get server(): string {
    return this.config.getCurrentCluster()?.server ?? '';
  }

  /**
   * All pages of a LIST; `resource` names it in errors ("pods"). `map` reduces
   * each item as its page arrives, so the raw objects of 10,000 pods are never
   * all alive at once.
   */
  async list<T>(path: string, resource: string, query: Record<string, string>, map: (item: unknown) => T, pageSize = 500): Promise<ListPage<T>> {
    const items: T[] = [];
    let continueToken: string | undefined;
    let resourceVersion = '';
    do {
      const params = new URLSearchParams({ ...query, limit: String(pageSize), ...(continueToken ? { continue: continueToken } : {}) });
      const body = (await this.get(`${path}?${params}`, 'list', resource)) as {
        items?: unknown[];
        metadata?: { resourceVersion?: string; continue?: string };
      };
      for (const item of body.items ?? []) items.push(map(item));
      resourceVersion = body.metadata?.resourceVersion ?? resourceVersion;
      continueToken = body.metadata?.continue || undefined;
    } while (continueToken);
    return { items, resourceVersion };
  }

  /** Starts a WATCH; `done` is called once when it ends (error or server close). Returns a stop function. */
  async watch(path: string, query: Record<string, string | boolean>, onEvent: WatchHandler, done: (err?: unknown) => void): Promise<() => void> {
    let finished = false;
    const finish = (err?: unknown) => {
      if (finished) return;
      finished = true;
      done(err);
    };
    const controller = await this.watcher.watch(
      path,
      query,
      (type: string, object: Record<string, unknown>) => onEvent(type, object),
      (err: unknown) => finish(err ?? undefined),
    );
    return () => {
      finished = true;
      controller.abort();
    };
  }

  private async get(pathAndQuery: string, verb: string, resource: string): Promise<unknown> {
    const url = new URL(pathAndQuery, this.server);
    const options: https.RequestOptions = { method: 'GET', headers: { Accept: 'application/json' } };
    await this.config.applyToHTTPSOptions(options);
    const transport = url.protocol === 'http:' ? http : https;
    return new Promise((resolve, reject) => {
      const req = transport.request(url, options, (res) => {
        // Decode as chunks arrive: holding a page's TLS buffers until the end
        // (then Buffer.concat) left the malloc arena tens of MB larger for good.
        res.setEncoding('utf8');
        let text = '';
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          if ((res.statusCode ?? 0) >= 400) {
            let message = text;
            try {
              message = (JSON.parse(text) as { message?: string }).message ?? text;
            } catch {
              // not a Status object
            }
            reject(new KubeApiError(res.statusCode ?? 0, verb, resource, `${verb} ${resource}: HTTP ${res.statusCode}: ${message.trim()}`));
            return;
          }
          try {
            resolve(JSON.parse(text));
          } catch (err) {
            reject(new Error(`${verb} ${resource}: invalid JSON: ${(err as Error).message}`));
          }
        });
      });
      req.on('error', (err) => reject(new KubeApiError(0, verb, resource, `${verb} ${resource}: ${err.message}`)));
      req.setTimeout(60_000, () => req.destroy(new Error('timed out after 60 s')));
      req.end();
    });
  }
}
