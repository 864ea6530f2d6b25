/**
 * A Kubernetes API server for tests, `flowtel demo` and benchmarks: HTTPS
 * with a test CA and a bearer token, serving Pods, Services, Nodes,
 * ReplicaSets, Jobs (and a few more workload types) on the real paths with
 * the real list/watch protocol: resourceVersions, limit/continue paging,
 * label and field selectors, chunked watch streams, BOOKMARKs and 410 Expired.
 * No real kube-apiserver can run here; this is what @kubernetes/client-node
 * informers (and so the agent) talk to.
 *
 * Faults a test can inject: compaction, dropped or ended watch connections,
 * the server going away and coming back on the same port, RBAC denials.
 * Request counters per (verb, resource) let a test assert API load.
 * SelfSubjectAccessReviews are answered as the reads are (flowtel doctor asks them).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import path from 'node:path';
import YAML from 'yaml';
import { resourceTypeAt, type KubeObject, type ResourceType } from './k8s-api-objects';
import { allOf, parseFieldSelector, parseLabelSelector, SelectorError, type Matcher } from './k8s-api-selectors';
import { ExpiredError, K8sStore, type Version } from './k8s-api-store';
import { makeTestCertificates, type TestCertificates } from './k8s-api-tls';
import { WatchStream } from './k8s-api-watch';

export * from './k8s-api-objects';
export { ExpiredError, StoreError } from './k8s-api-store';

export type Verb = 'get' | 'list' | 'watch';

export interface K8sApiServerOptions {
  /** 0 (default) picks a free port; restarts reuse whatever port was bound first. */
  port?: number;
  host?: string;
  /** The bearer token clients must send; random by default. */
  token?: string;
  /** The user named in RBAC denials. */
  user?: string;
  /** Interval of BOOKMARK events on watches that allow them. */
  bookmarkIntervalMs?: number;
  initialResourceVersion?: number;
  /** Events kept per resource type before the oldest are compacted away. */
  maxHistory?: number;
}

export interface RequestRecord {
  verb: Verb;
  /** Plural resource name, e.g. "pods". */
  resource: string;
  namespace?: string;
  name?: string;
  /** The query string, without '?'. */
  query: string;
  status: number;
  at: number;
}

export interface KubeconfigOptions {
  /** The context's default namespace. */
  namespace?: string;
  /** Send no token (to see the 401). */
  withoutToken?: boolean;
}

interface Route {
  type: ResourceType;
  namespace?: string;
  name?: string;
}

interface ContinueToken {
  rv: number;
  /** The key of the last object returned; the next page starts after it. */
  after: string;
}

const MAX_REQUEST_RECORDS = 10_000;
const ACCESS_REVIEW_PATH = '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews';

/** A request the real server would refuse with 400 (bad parameters). */
class BadRequest extends Error {}

export class K8sApiServer {
  readonly store: K8sStore;
  readonly token: string;
  readonly certificates: TestCertificates;
  readonly user: string;
  bookmarkIntervalMs: number;
  /** The most recent requests, oldest first (bounded). */
  readonly requests: RequestRecord[] = [];
  private readonly counts = new Map<string, number>();
  private readonly forbidden = new Set<string>();
  private readonly watches = new Set<WatchStream>();
  /** Every TCP connection, handshaking ones included (closeAllConnections only knows HTTP ones). */
  private readonly sockets = new Set<net.Socket>();
  private readonly server: https.Server;
  private readonly host: string;
  private boundPort: number;
  private listening = false;

  constructor(options: K8sApiServerOptions = {}) {
    this.store = new K8sStore({ initialResourceVersion: options.initialResourceVersion, maxHistory: options.maxHistory });
    this.token = options.token ?? crypto.randomBytes(24).toString('base64url');
    this.user = options.user ?? 'system:serviceaccount:flowtel:flowtel';
    this.bookmarkIntervalMs = options.bookmarkIntervalMs ?? 3000;
    this.host = options.host ?? '127.0.0.1';
    this.boundPort = options.port ?? 0;
    this.certificates = makeTestCertificates({ hosts: [this.host, '127.0.0.1', 'localhost', '::1'] });
    this.server = https.createServer({ key: this.certificates.serverKey, cert: this.certificates.serverCert }, (req, res) => this.handle(req, res));
    this.server.on('connection', (socket: net.Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  /** A new server, listening. */
  static async start(options: K8sApiServerOptions = {}): Promise<K8sApiServer> {
    const server = new K8sApiServer(options);
    await server.start();
    return server;
  }

  get port(): number {
    return this.boundPort;
  }

  get url(): string {
    return `https://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.boundPort}`;
  }

  get running(): boolean {
    return this.listening;
  }

  /** Listens (again) on the same port: after stop(), this is the API server coming back. */
  async start(): Promise<void> {
    if (this.listening) return;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen(this.boundPort, this.host, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    const address = this.server.address();
    if (address && typeof address === 'object') this.boundPort = address.port;
    this.listening = true;
  }

  /** Goes away: refuses new connections and cuts every open one, watches included. */
  async stop(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const w of [...this.watches]) w.destroy();
    this.server.closeAllConnections();
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  // ---- The store, for the test ----------------------------------------------------------

  get resourceVersion(): string {
    return String(this.store.resourceVersion);
  }

  create(obj: KubeObject): KubeObject {
    return this.store.create(obj);
  }

  update(obj: KubeObject): KubeObject {
    return this.store.update(obj);
  }

  apply(obj: KubeObject): KubeObject {
    return this.store.apply(obj);
  }

  delete(kind: string, namespace: string | undefined, name: string): KubeObject {
    return this.store.delete(kind, namespace, name);
  }

  get(kind: string, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.store.get(kind, namespace, name);
  }

  list(kind: string): KubeObject[] {
    return this.store.list(kind);
  }

  // ---- Faults ---------------------------------------------------------------------------

  /** Drops all event history: watches and continue tokens from before now get 410 Expired. */
  compact(): void {
    this.store.compact();
  }

  /** Destroys every open watch socket without ending the stream. Returns how many. */
  dropWatchConnections(): number {
    return this.eachWatch((w) => w.destroy());
  }

  /** Ends every open watch cleanly, as a server-side watch timeout does. Returns how many. */
  endWatches(): number {
    return this.eachWatch((w) => w.end());
  }

  /** Ends every open watch with an ERROR event carrying 410 Expired. Returns how many. */
  expireWatches(): number {
    return this.eachWatch((w) => w.expire());
  }

  get openWatches(): number {
    return this.watches.size;
  }

  /** Denies (or, with forbidden=false, allows again) a verb on a resource ("pods"), or '*' for every verb. */
  setForbidden(resource: string, verb: Verb | '*', forbidden = true): void {
    const key = `${verb} ${resource}`;
    if (forbidden) this.forbidden.add(key);
    else this.forbidden.delete(key);
  }

  // ---- Load accounting ------------------------------------------------------------------

  /** Requests so far for a verb and plural resource name (rejected ones included, 401s not). */
  requestCount(verb: Verb, resource: string): number {
    return this.counts.get(`${verb} ${resource}`) ?? 0;
  }

  resetRequestCounts(): void {
    this.counts.clear();
    this.requests.length = 0;
  }

  // ---- Client configuration -------------------------------------------------------------

  /** A kubeconfig that trusts this server's CA (no insecure-skip-tls-verify) and carries the token. */
  kubeconfigObject(options: KubeconfigOptions = {}): Record<string, unknown> {
    return {
      apiVersion: 'v1',
      kind: 'Config',
      preferences: {},
      clusters: [
        {
          name: 'flowtel-test',
          cluster: { server: this.url, 'certificate-authority-data': Buffer.from(this.certificates.caCert).toString('base64') },
        },
      ],
      users: [{ name: 'flowtel', user: options.withoutToken ? {} : { token: this.token } }],
      contexts: [{ name: 'flowtel-test', context: { cluster: 'flowtel-test', user: 'flowtel', namespace: options.namespace ?? 'default' } }],
      'current-context': 'flowtel-test',
    };
  }

  /** The kubeconfig as YAML, for KubeConfig.loadFromString or a file. */
  kubeconfig(options: KubeconfigOptions = {}): string {
    return YAML.stringify(this.kubeconfigObject(options));
  }

  writeKubeconfig(file: string, options: KubeconfigOptions = {}): void {
    fs.writeFileSync(file, this.kubeconfig(options), { mode: 0o600 });
  }

  /**
   * The files a pod's service account mount holds (token, ca.crt, namespace) in `dir`, for
   * in-cluster configuration; inClusterEnv() gives the matching KUBERNETES_SERVICE_* variables.
   */
  writeServiceAccount(dir: string, namespace = 'flowtel'): void {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'token'), this.token, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'ca.crt'), this.certificates.caCert);
    fs.writeFileSync(path.join(dir, 'namespace'), namespace);
  }

  inClusterEnv(): Record<string, string> {
    return { KUBERNETES_SERVICE_HOST: this.host, KUBERNETES_SERVICE_PORT: String(this.boundPort) };
  }

  // ---- HTTP -----------------------------------------------------------------------------

  /**
   * POST of a SelfSubjectAccessReview: the same answer the server's own reads give (setForbidden), as
   * kube-apiserver's authorizer answers both. Only resource attributes are reviewed.
   */
  private serveAccessReview(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.method !== 'POST') {
      sendStatus(res, 405, 'MethodNotAllowed', `selfsubjectaccessreviews are created (POST), not ${req.method}`);
      return;
    }
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('end', () => {
      let review: { spec?: { resourceAttributes?: { verb?: string; resource?: string; group?: string; namespace?: string } } };
      try {
        review = JSON.parse(text) as typeof review;
      } catch {
        sendStatus(res, 400, 'BadRequest', 'the request body is not JSON');
        return;
      }
      const attributes = review.spec?.resourceAttributes;
      if (!attributes?.verb || !attributes.resource) {
        sendStatus(res, 422, 'Invalid', 'spec.resourceAttributes.verb and .resource are required (only resource attributes are reviewed here)');
        return;
      }
      const denied = this.forbidden.has(`${attributes.verb} ${attributes.resource}`) || this.forbidden.has(`* ${attributes.resource}`);
      const status = denied
        ? { allowed: false, reason: `user "${this.user}" cannot ${attributes.verb} ${attributes.resource}` }
        : { allowed: true, reason: 'allowed by the test API server' };
      sendJson(res, 201, JSON.stringify({ apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', metadata: {}, spec: review.spec, status }));
    });
  }

  private eachWatch(fn: (w: WatchStream) => void): number {
    const all = [...this.watches];
    all.forEach(fn);
    return all.length;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'https://apiserver');
    if (['/healthz', '/livez', '/readyz'].includes(url.pathname)) {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
      return;
    }
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      sendStatus(res, 401, 'Unauthorized', 'Unauthorized');
      return;
    }
    if (url.pathname === '/version') {
      sendJson(res, 200, JSON.stringify({ major: '1', minor: '31', gitVersion: 'v1.31.4-flowtel-test', platform: 'linux/amd64' }));
      return;
    }
    if (url.pathname === ACCESS_REVIEW_PATH) {
      this.serveAccessReview(req, res);
      return;
    }
    const route = parseRoute(url.pathname);
    if (!route) {
      sendStatus(res, 404, 'NotFound', 'the server could not find the requested resource');
      return;
    }
    const params = url.searchParams;
    const watch = params.get('watch') === 'true' || params.get('watch') === '1';
    const verb: Verb = route.name !== undefined ? 'get' : watch ? 'watch' : 'list';
    const countKey = `${verb} ${route.type.plural}`;
    this.counts.set(countKey, (this.counts.get(countKey) ?? 0) + 1);
    const record: RequestRecord = {
      verb,
      resource: route.type.plural,
      ...(route.namespace !== undefined ? { namespace: route.namespace } : {}),
      ...(route.name !== undefined ? { name: route.name } : {}),
      query: url.search.slice(1),
      status: 0,
      at: Date.now(),
    };
    this.requests.push(record);
    if (this.requests.length > MAX_REQUEST_RECORDS) this.requests.splice(0, this.requests.length - MAX_REQUEST_RECORDS);
    // 'close' also fires for a watch whose socket was destroyed, which never 'finish'es.
    res.on('close', () => (record.status = res.statusCode));
    if (req.method !== 'GET') {
      sendStatus(res, 405, 'MethodNotAllowed', `the test API server serves reads only, not ${req.method}`);
      return;
    }
    if (this.forbidden.has(`${verb} ${route.type.plural}`) || this.forbidden.has(`* ${route.type.plural}`)) {
      const scope = route.namespace !== undefined ? `in the namespace "${route.namespace}"` : 'at the cluster scope';
      const message = `${route.type.plural}${route.name !== undefined ? ` "${route.name}"` : ''} is forbidden: User "${this.user}" cannot ${verb} resource "${route.type.plural}" in API group "${route.type.group}" ${scope}`;
      sendStatus(res, 403, 'Forbidden', message, { ...(route.name !== undefined ? { name: route.name } : {}), kind: route.type.plural });
      return;
    }
    try {
      if (verb === 'get') this.serveGet(res, route);
      else if (verb === 'watch') this.serveWatch(res, route, params);
      else this.serveList(res, route, params);
    } catch (err) {
      if (res.headersSent) res.destroy();
      else if (err instanceof SelectorError || err instanceof BadRequest) sendStatus(res, 400, 'BadRequest', err.message);
      else if (err instanceof ExpiredError) sendStatus(res, 410, 'Expired', err.message);
      else sendStatus(res, 500, 'InternalError', (err as Error).message);
    }
  }

  private serveGet(res: http.ServerResponse, route: Route): void {
    const version = this.store.lookup(route.type, route.namespace, route.name as string);
    if (!version || (route.type.namespaced && route.namespace === undefined)) {
      sendStatus(res, 404, 'NotFound', `${route.type.plural} "${route.name}" not found`, { name: route.name, kind: route.type.plural });
      return;
    }
    sendJson(res, 200, version.json);
  }

  private matcher(route: Route, params: URLSearchParams): Matcher | undefined {
    const ns = route.namespace;
    return allOf(
      ns !== undefined ? (o) => o.metadata.namespace === ns : undefined,
      parseLabelSelector(params.get('labelSelector')),
      parseFieldSelector(params.get('fieldSelector'), route.type),
    );
  }

  private serveList(res: http.ServerResponse, route: Route, params: URLSearchParams): void {
    const matcher = this.matcher(route, params);
    const limit = Number(params.get('limit') ?? 0);
    const continueParam = params.get('continue');
    const rvParam = params.get('resourceVersion') ?? '';
    const rvMatch = params.get('resourceVersionMatch') ?? '';
    if (rvMatch && !rvParam) throw new BadRequest('resourceVersionMatch is forbidden unless resourceVersion is provided');
    if (rvMatch && !['Exact', 'NotOlderThan'].includes(rvMatch)) throw new BadRequest(`resourceVersionMatch: Unsupported value: "${rvMatch}"`);
    if (rvParam && !/^\d+$/.test(rvParam)) throw new BadRequest(`resourceVersion: Invalid value: "${rvParam}"`);
    let listRv = this.store.resourceVersion;
    let after: string | undefined;
    let items: Version[];
    if (continueParam) {
      const token = decodeContinue(continueParam);
      after = token.after;
      try {
        items = this.store.snapshot(route.type, token.rv);
        listRv = token.rv;
      } catch (err) {
        if (!(err instanceof ExpiredError)) throw err;
        // As the real server: 410, plus a token that continues inconsistently from the current state.
        const inconsistent = encodeContinue({ rv: this.store.resourceVersion, after: token.after });
        sendStatus(
          res,
          410,
          'Expired',
          'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.',
          undefined,
          { continue: inconsistent },
        );
        return;
      }
    } else if (rvMatch === 'Exact') {
      listRv = Number(rvParam);
      items = this.store.snapshot(route.type, listRv);
    } else {
      items = this.store.snapshot(route.type, listRv);
    }
    let i = after === undefined ? 0 : firstKeyAfter(items, after);
    const page: string[] = [];
    let last: string | undefined;
    for (; i < items.length && !(limit > 0 && page.length >= limit); i++) {
      const v = items[i];
      if (matcher && !matcher(v.object)) continue;
      page.push(v.itemJson);
      last = v.key;
    }
    const metadata: Record<string, unknown> = { resourceVersion: String(listRv) };
    if (limit > 0 && i < items.length) {
      metadata.continue = encodeContinue({ rv: listRv, after: last ?? after ?? '' });
      // The real server counts what is left only when no selector makes that unknowable.
      if (!params.get('labelSelector') && !params.get('fieldSelector') && route.namespace === undefined) metadata.remainingItemCount = items.length - i;
    }
    const { listKind, apiVersion } = route.type;
    sendJson(res, 200, `{"kind":"${listKind}","apiVersion":"${apiVersion}","metadata":${JSON.stringify(metadata)},"items":[${page.join(',')}]}`);
  }

  private serveWatch(res: http.ServerResponse, route: Route, params: URLSearchParams): void {
    const rv = params.get('resourceVersion') ?? undefined;
    if (rv && !/^\d+$/.test(rv)) throw new BadRequest(`resourceVersion: Invalid value: "${rv}"`);
    const timeout = params.get('timeoutSeconds');
    const stream = new WatchStream(
      this.store,
      {
        type: route.type,
        matcher: this.matcher(route, params),
        resourceVersion: rv,
        bookmarks: params.get('allowWatchBookmarks') === 'true',
        bookmarkIntervalMs: this.bookmarkIntervalMs,
        sendInitialEvents: params.get('sendInitialEvents') === 'true',
        timeoutSeconds: timeout ? Number(timeout) : undefined,
      },
      res,
      (w) => this.watches.delete(w),
    );
    this.watches.add(stream);
    stream.begin();
  }
}

/** /api/v1[/namespaces/{ns}]/{plural}[/{name}] and /apis/{group}/v1[/namespaces/{ns}]/{plural}[/{name}]. */
function parseRoute(pathname: string): Route | undefined {
  let segs: string[];
  try {
    segs = pathname.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    return undefined;
  }
  let group: string;
  let rest: string[];
  if (segs[0] === 'api' && segs[1] === 'v1') {
    group = '';
    rest = segs.slice(2);
  } else if (segs[0] === 'apis' && segs.length >= 3 && segs[2] === 'v1') {
    group = segs[1];
    rest = segs.slice(3);
  } else return undefined;
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  if (rest.length < 1 || rest.length > 2) return undefined;
  const type = resourceTypeAt(group, rest[0]);
  if (!type || (namespace !== undefined && !type.namespaced)) return undefined;
  return { type, ...(namespace !== undefined ? { namespace } : {}), ...(rest[1] !== undefined ? { name: rest[1] } : {}) };
}

function firstKeyAfter(items: Version[], key: string): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (items[mid].key <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// Opaque to clients, as the real token is (base64 of JSON there too, but nobody may rely on it).
function encodeContinue(token: ContinueToken): string {
  return Buffer.from(JSON.stringify({ v: 'flowtel.test/v1', ...token })).toString('base64url');
}

function decodeContinue(value: string): ContinueToken {
  try {
    const t = JSON.parse(Buffer.from(value, 'base64url').toString()) as Partial<ContinueToken> & { v?: string };
    if (t.v === 'flowtel.test/v1' && typeof t.rv === 'number' && typeof t.after === 'string') return { rv: t.rv, after: t.after };
  } catch {
    // fall through
  }
  throw new BadRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
}

function sendJson(res: http.ServerResponse, code: number, body: string): void {
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }).end(body);
}

function sendStatus(
  res: http.ServerResponse,
  code: number,
  reason: string,
  message: string,
  details?: Record<string, unknown>,
  metadata: Record<string, unknown> = {},
): void {
  const status = { kind: 'Status', apiVersion: 'v1', metadata, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
  sendJson(res, code, JSON.stringify(status));
}
