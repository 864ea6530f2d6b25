/**
 * The test Kubernetes API server against the real @kubernetes/client-node:
 * CoreV1Api/AppsV1Api/BatchV1Api lists and informers (ListWatch), over TLS
 * with the server's own CA and a bearer token. Besides checking the server,
 * these tests pin down how client-node 1.4 informers behave on dropped
 * watches, clean watch ends, outages and 410 Expired, which the agent's
 * Kubernetes metadata cache builds on.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { K8sApiServer, makeJob, makeNode, makePod, makeReplicaSet, makeService, ownerReference, type KubeObject } from '../../src/testbed/k8s-api-server';
import { makeTestCertificates } from '../../src/testbed/k8s-api-tls';
import { sleep, waitFor } from '../support/agent-process';
import { tempDir } from '../support/tmp';

type Verb = 'add' | 'update' | 'delete';
interface Seen {
  verb: Verb;
  name: string;
  rv: string;
  at: number;
}

/**
 * An informer with the restart policy an agent needs on client-node 1.4: the
 * ListWatch stops on any error except 410, so restart it after a short delay.
 */
class InformerProbe<T extends k8s.KubernetesObject> {
  // makeInformer returns a ListWatch; its latestResourceVersion() tells where a re-watch resumes.
  readonly informer: k8s.ListWatch<T>;
  readonly seen: Seen[] = [];
  readonly errors: Array<{ code?: unknown; message: string }> = [];
  connects = 0;
  private stopped = false;

  constructor(informer: k8s.Informer<T> & k8s.ObjectCache<T>, restartDelayMs = 200) {
    this.informer = informer as k8s.ListWatch<T>;
    for (const verb of ['add', 'update', 'delete'] as const) {
      informer.on(verb, (o) => this.seen.push({ verb, name: o.metadata?.name ?? '', rv: o.metadata?.resourceVersion ?? '', at: Date.now() }));
    }
    informer.on('connect', () => this.connects++);
    informer.on('error', (err?: { code?: unknown; statusCode?: unknown; message?: string }) => {
      if (this.stopped) return; // stop() aborts the request, which client-node also reports as an error
      this.errors.push({ code: err?.code ?? err?.statusCode, message: String(err?.message ?? err) });
      setTimeout(() => {
        if (!this.stopped) this.informer.start().catch(() => undefined);
      }, restartDelayMs);
    });
  }

  async start(): Promise<void> {
    await this.informer.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.informer.stop();
  }

  /** Waits until the informer reported `verb` for `name`; returns the delay since `since`. */
  async saw(verb: Verb, name: string, since: number, timeoutMs = 2000): Promise<number> {
    const event = await waitFor(`${verb} ${name}`, () => this.seen.find((e) => e.verb === verb && e.name === name && e.at >= since), timeoutMs);
    return event.at - since;
  }

  count(verb: Verb, name: string): number {
    return this.seen.filter((e) => e.verb === verb && e.name === name).length;
  }
}

interface WatchLine {
  type: string;
  object: {
    kind?: string;
    apiVersion?: string;
    metadata?: { name?: string; resourceVersion?: string; annotations?: Record<string, string> };
    code?: number;
    reason?: string;
  };
}

/** A raw client-node Watch, collecting every event line and the done() result. */
async function rawWatch(kc: k8s.KubeConfig, urlPath: string, query: Record<string, string | number | boolean | undefined>) {
  const lines: WatchLine[] = [];
  let done: { err: unknown } | undefined;
  const controller = await new k8s.Watch(kc).watch(
    urlPath,
    query,
    (type: string, object: WatchLine['object']) => lines.push({ type, object }),
    (err: unknown) => (done = { err }),
  );
  return { lines, controller, done: () => done };
}

const hex64 = /^containerd:\/\/[0-9a-f]{64}$/;

function apiError(err: unknown): { code: number; status: { reason?: string; message?: string; code?: number } } {
  const e = err as { code: number; body: unknown };
  assert.equal(typeof e.code, 'number', `not an ApiException: ${String(err)}`);
  const status = typeof e.body === 'string' ? JSON.parse(e.body) : e.body;
  return { code: e.code, status };
}

describe('testbed: Kubernetes API server with @kubernetes/client-node', function () {
  this.timeout(60_000);
  let api: K8sApiServer;
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  const cleanups: Array<() => unknown> = [];

  beforeEach(async () => {
    api = await K8sApiServer.start({ bookmarkIntervalMs: 250 });
    cleanups.push(() => api.stop());
    kc = new k8s.KubeConfig();
    kc.loadFromString(api.kubeconfig());
    core = kc.makeApiClient(k8s.CoreV1Api);
  });

  afterEach(async () => {
    // Newest first: informers stop before the server they talk to.
    while (cleanups.length) {
      try {
        await cleanups.pop()?.();
      } catch {
        // keep cleaning up
      }
    }
  });

  function podInformer(options: { labelSelector?: string; fieldSelector?: string } = {}): InformerProbe<k8s.V1Pod> {
    const list = () => core.listPodForAllNamespaces({ labelSelector: options.labelSelector, fieldSelector: options.fieldSelector });
    const informer = options.fieldSelector
      ? new k8s.ListWatch<k8s.V1Pod>('/api/v1/pods', new k8s.Watch(kc), list, false, options.labelSelector, options.fieldSelector)
      : k8s.makeInformer<k8s.V1Pod>(kc, '/api/v1/pods', list, options.labelSelector);
    const probe = new InformerProbe(informer);
    cleanups.push(() => probe.stop());
    return probe;
  }

  function seedCluster(): { rs: KubeObject; job: KubeObject } {
    api.create(makeNode({ name: 'node-a', internalIP: '10.200.0.1', podCIDR: '10.244.1.0/24' }));
    api.create(makeNode({ name: 'node-b', internalIP: '10.200.0.2', podCIDR: '10.244.2.0/24' }));
    const rs = api.create(makeReplicaSet({ name: 'web-7d4b9c', namespace: 'shop', ownerDeployment: 'web' }));
    const job = api.create(makeJob({ name: 'report-28471234', namespace: 'shop', ownerCronJob: 'report' }));
    // Two pods of the web ReplicaSet, one on each node.
    const webPod = { namespace: 'shop', labels: { app: 'web' }, ownerReferences: [ownerReference(rs)] };
    api.create(
      makePod({
        ...webPod,
        name: 'web-7d4b9c-x1',
        nodeName: 'node-a',
        podIP: '10.244.1.10',
        containers: [{ name: 'web' }, { name: 'sidecar' }],
        qosClass: 'Burstable',
      }),
    );
    api.create(makePod({ ...webPod, name: 'web-7d4b9c-x2', nodeName: 'node-b', podIP: '10.244.2.10' }));
    api.create(
      makePod({
        name: 'report-28471234-q',
        namespace: 'shop',
        nodeName: 'node-a',
        podIP: '10.244.1.11',
        labels: { app: 'report' },
        ownerReferences: [ownerReference(job)],
        qosClass: 'Guaranteed',
      }),
    );
    api.create(
      makeService({ name: 'web', namespace: 'shop', clusterIP: '10.96.0.20', selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
    );
    return { rs, job };
  }

  it('lists real Pod/Service/Node/ReplicaSet/Job JSON over TLS with the test CA and a bearer token', async () => {
    const { rs, job } = seedCluster();
    const kubeconfig = api.kubeconfig();
    assert.match(kubeconfig, /certificate-authority-data: /);
    assert.doesNotMatch(kubeconfig, /insecure-skip-tls-verify/);

    const pods = await core.listPodForAllNamespaces();
    assert.equal(pods.kind, 'PodList');
    assert.equal(pods.metadata?.resourceVersion, api.resourceVersion);
    assert.deepEqual(
      pods.items.map((p) => p.metadata?.name),
      ['report-28471234-q', 'web-7d4b9c-x1', 'web-7d4b9c-x2'],
    );
    const web = pods.items[1];
    assert.equal(web.spec?.nodeName, 'node-a');
    assert.equal(web.status?.podIP, '10.244.1.10');
    assert.deepEqual(
      web.status?.podIPs?.map((p) => p.ip),
      ['10.244.1.10'],
    );
    assert.equal(web.status?.qosClass, 'Burstable');
    assert.deepEqual(
      web.status?.containerStatuses?.map((c) => c.name),
      ['web', 'sidecar'],
    );
    for (const c of web.status?.containerStatuses ?? []) assert.match(c.containerID ?? '', hex64);
    assert.deepEqual(
      web.metadata?.ownerReferences?.map((o) => [o.kind, o.name, o.uid, o.controller]),
      [['ReplicaSet', 'web-7d4b9c', rs.metadata.uid, true]],
    );
    assert.match(web.metadata?.uid ?? '', /^[0-9a-f-]{36}$/);
    assert.ok(web.metadata?.creationTimestamp instanceof Date);
    assert.ok(Number(web.metadata?.resourceVersion) > 0);

    const nsPods = await core.listNamespacedPod({ namespace: 'shop', labelSelector: 'app=web' });
    assert.equal(nsPods.items.length, 2);
    assert.equal((await core.listNamespacedPod({ namespace: 'other' })).items.length, 0);
    assert.equal((await core.readNamespacedPod({ namespace: 'shop', name: 'web-7d4b9c-x2' })).status?.podIP, '10.244.2.10');

    const services = await core.listServiceForAllNamespaces();
    assert.equal(services.items[0].spec?.clusterIP, '10.96.0.20');
    assert.deepEqual(services.items[0].spec?.selector, { app: 'web' });
    const nodes = await core.listNode();
    assert.deepEqual(
      nodes.items.map((n) => n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address),
      ['10.200.0.1', '10.200.0.2'],
    );
    const replicaSets = await kc.makeApiClient(k8s.AppsV1Api).listReplicaSetForAllNamespaces();
    assert.deepEqual(
      replicaSets.items[0].metadata?.ownerReferences?.map((o) => [o.kind, o.name]),
      [['Deployment', 'web']],
    );
    const jobs = await kc.makeApiClient(k8s.BatchV1Api).listJobForAllNamespaces();
    assert.equal(jobs.items[0].metadata?.uid, job.metadata.uid);
    assert.deepEqual(
      jobs.items[0].metadata?.ownerReferences?.map((o) => [o.kind, o.name]),
      [['CronJob', 'report']],
    );

    // A kubeconfig file works the same.
    const file = path.join(tempDir('k8s-api'), 'kubeconfig');
    api.writeKubeconfig(file);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600, 'a kubeconfig holds a token');
    const fromFile = new k8s.KubeConfig();
    fromFile.loadFromFile(file);
    assert.equal((await fromFile.makeApiClient(k8s.CoreV1Api).listNode()).items.length, 2);
  });

  it('answers 401 without the token and fails TLS against a CA that did not sign it', async () => {
    const anonymous = new k8s.KubeConfig();
    anonymous.loadFromString(api.kubeconfig({ withoutToken: true }));
    const err = await anonymous
      .makeApiClient(k8s.CoreV1Api)
      .listNode()
      .then(
        () => assert.fail('listed without a token'),
        (e: unknown) => e,
      );
    // client-node drops the body of a 401; the Status is there for clients that read it.
    assert.equal((err as { code?: number }).code, 401);
    const raw = await new Promise<{ code?: number; body: string }>((resolve, reject) =>
      https
        .get(`${api.url}/api/v1/pods`, { ca: api.certificates.caCert }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ code: res.statusCode, body }));
        })
        .on('error', reject),
    );
    assert.equal(raw.code, 401);
    assert.equal(JSON.parse(raw.body).reason, 'Unauthorized');

    const strangerCa = makeTestCertificates().caCert;
    const config = api.kubeconfigObject() as { clusters: Array<{ cluster: Record<string, string> }> };
    config.clusters[0].cluster['certificate-authority-data'] = Buffer.from(strangerCa).toString('base64');
    const untrusting = new k8s.KubeConfig();
    untrusting.loadFromString(JSON.stringify(config));
    await assert.rejects(untrusting.makeApiClient(k8s.CoreV1Api).listNode(), /certificate|self.signed|verify/i);
  });

  it('filters lists by label selectors (equality and set-based) and field selectors', async () => {
    seedCluster();
    api.create(makePod({ name: 'canary', namespace: 'shop', nodeName: 'node-b', labels: { app: 'web', track: 'canary' } }));
    const names = async (q: { labelSelector?: string; fieldSelector?: string }) => (await core.listPodForAllNamespaces(q)).items.map((p) => p.metadata?.name);
    assert.deepEqual(await names({ fieldSelector: 'spec.nodeName=node-a' }), ['report-28471234-q', 'web-7d4b9c-x1']);
    assert.deepEqual(await names({ fieldSelector: 'spec.nodeName=node-b,metadata.name!=canary' }), ['web-7d4b9c-x2']);
    assert.deepEqual(await names({ fieldSelector: 'metadata.namespace=shop,metadata.name=canary' }), ['canary']);
    assert.deepEqual(await names({ labelSelector: 'app=web,track!=canary' }), ['web-7d4b9c-x1', 'web-7d4b9c-x2']);
    assert.deepEqual(await names({ labelSelector: 'app in (report, nothing)' }), ['report-28471234-q']);
    assert.deepEqual(await names({ labelSelector: 'app notin (web),!track' }), ['report-28471234-q']);
    assert.deepEqual(await names({ labelSelector: 'track' }), ['canary']);
    const bad = await core.listPodForAllNamespaces({ fieldSelector: 'spec.containers=x' }).then(
      () => assert.fail('unsupported field accepted'),
      (e: unknown) => e,
    );
    assert.equal(apiError(bad).code, 400);
    const unparsable = await core.listPodForAllNamespaces({ labelSelector: 'app in (web' }).catch((e: unknown) => e);
    assert.equal(apiError(unparsable).code, 400);
  });

  it('pages with limit/continue over one consistent snapshot, and answers 410 Expired to a continue older than compaction', async () => {
    for (let i = 0; i < 1234; i++) api.create(makePod({ name: `pod-${String(i).padStart(4, '0')}`, namespace: `ns-${i % 3}`, nodeName: 'node-a' }));
    const names: string[] = [];
    const versions = new Set<string>();
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await core.listPodForAllNamespaces({ limit: 100, _continue: token });
      pages++;
      names.push(...page.items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`));
      versions.add(page.metadata?.resourceVersion ?? '');
      token = page.metadata?._continue;
      if (token) assert.equal(page.metadata?.remainingItemCount, 1234 - names.length);
      // Writes between pages do not show: every page is served at the first page's resourceVersion.
      if (pages === 2) {
        api.create(makePod({ name: 'pod-late', namespace: 'ns-2' }));
        api.delete('Pod', 'ns-2', 'pod-1232');
      }
    } while (token);
    assert.equal(pages, 13);
    assert.equal(names.length, 1234);
    assert.equal(new Set(names).size, 1234);
    assert.ok(names.includes('ns-2/pod-1232') && !names.includes('ns-2/pod-late'));
    assert.equal(versions.size, 1);

    // resourceVersionMatch=Exact lists the past; 0 / NotOlderThan list the present.
    const listRv = [...versions][0];
    const exact = await core.listPodForAllNamespaces({ resourceVersion: listRv, resourceVersionMatch: 'Exact' });
    assert.equal(exact.items.length, 1234);
    assert.equal(exact.metadata?.resourceVersion, listRv);
    assert.equal((await core.listPodForAllNamespaces({ resourceVersion: '0' })).items.length, 1234);
    assert.equal(
      (await core.listPodForAllNamespaces({ resourceVersion: listRv, resourceVersionMatch: 'NotOlderThan' })).metadata?.resourceVersion,
      api.resourceVersion,
    );

    const first = await core.listPodForAllNamespaces({ limit: 500 });
    api.create(makePod({ name: 'pod-after-first-page' }));
    api.compact();
    const err = await core.listPodForAllNamespaces({ limit: 500, _continue: first.metadata?._continue }).then(
      () => assert.fail('continued past compaction'),
      (e: unknown) => e,
    );
    const { code, status } = apiError(err);
    assert.equal(code, 410);
    assert.equal(status.reason, 'Expired');
    assert.match(status.message ?? '', /continue parameter is too old/);
    const tooOld = await core.listPodForAllNamespaces({ resourceVersion: listRv, resourceVersionMatch: 'Exact' }).catch((e: unknown) => e);
    assert.equal(apiError(tooOld).code, 410);
  });

  it('informer: initial list, then ADDED, MODIFIED and DELETED each within 2 s', async () => {
    seedCluster();
    const probe = podInformer();
    await probe.start();
    assert.equal(probe.informer.list().length, 3);
    assert.equal(probe.informer.get('web-7d4b9c-x1', 'shop')?.status?.podIP, '10.244.1.10');

    let t = Date.now();
    const created = api.create(makePod({ name: 'fresh', namespace: 'shop', nodeName: 'node-a', podIP: '10.244.1.50' }));
    const addMs = await probe.saw('add', 'fresh', t);
    t = Date.now();
    const changed = structuredClone(created);
    (changed.metadata.labels ??= {}).version = 'v2';
    api.update(changed);
    const updateMs = await probe.saw('update', 'fresh', t);
    assert.equal(probe.informer.get('fresh', 'shop')?.metadata?.labels?.version, 'v2');
    t = Date.now();
    api.delete('Pod', 'shop', 'fresh');
    const deleteMs = await probe.saw('delete', 'fresh', t);
    assert.equal(probe.informer.get('fresh', 'shop'), undefined);
    process.stdout.write(`      informer latency: add ${addMs} ms, update ${updateMs} ms, delete ${deleteMs} ms\n`);
    assert.deepEqual(probe.errors, []);
    assert.equal(api.requestCount('list', 'pods'), 1);
    assert.equal(api.requestCount('watch', 'pods'), 1);
    assert.match(api.requests.find((r) => r.verb === 'watch')?.query ?? '', /resourceVersion=\d+/);
  });

  it('informer with fieldSelector spec.nodeName sees pods enter and leave its node; labelSelector likewise', async () => {
    seedCluster();
    const onA = podInformer({ fieldSelector: 'spec.nodeName=node-a' });
    const webOnly = podInformer({ labelSelector: 'app=web' });
    await onA.start();
    await webOnly.start();
    assert.deepEqual(
      onA.informer
        .list()
        .map((p) => p.metadata?.name)
        .sort(),
      ['report-28471234-q', 'web-7d4b9c-x1'],
    );
    assert.deepEqual(
      webOnly.informer
        .list()
        .map((p) => p.metadata?.name)
        .sort(),
      ['web-7d4b9c-x1', 'web-7d4b9c-x2'],
    );

    // A pending pod scheduled onto node-a enters the node-a selection: ADDED, not MODIFIED.
    let t = Date.now();
    const pending = api.create(makePod({ name: 'pending', namespace: 'shop', phase: 'Pending', labels: { app: 'web' } }));
    await webOnly.saw('add', 'pending', t);
    const scheduled = structuredClone(pending);
    (scheduled.spec as { nodeName?: string }).nodeName = 'node-a';
    api.update(scheduled);
    await onA.saw('add', 'pending', t);
    await webOnly.saw('update', 'pending', t);

    // Relabelled out of app=web: DELETED for the label-selecting informer.
    t = Date.now();
    const relabelled = api.get('Pod', 'shop', 'pending') as KubeObject;
    relabelled.metadata.labels = { app: 'batch' };
    api.update(relabelled);
    await webOnly.saw('delete', 'pending', t);
    await onA.saw('update', 'pending', t);

    // Changes on node-b never reach the node-a informer.
    t = Date.now();
    api.create(makePod({ name: 'elsewhere', namespace: 'shop', nodeName: 'node-b' }));
    api.delete('Pod', 'shop', 'web-7d4b9c-x2');
    await webOnly.saw('delete', 'web-7d4b9c-x2', t);
    await sleep(200);
    assert.equal(onA.seen.filter((e) => e.name === 'elsewhere' || e.name === 'web-7d4b9c-x2').length, 0);
    assert.ok(api.requests.some((r) => r.verb === 'watch' && r.query.includes('fieldSelector=spec.nodeName%3Dnode-a')));
  });

  it('after dropWatchConnections() the informer resumes from its resourceVersion without a relist', async () => {
    seedCluster();
    const probe = podInformer();
    await probe.start();
    const rvBefore = probe.informer.latestResourceVersion();
    assert.equal(api.dropWatchConnections(), 1);
    const t = Date.now();
    api.create(makePod({ name: 'after-drop', namespace: 'shop' }));
    await probe.saw('add', 'after-drop', t, 5000);
    // client-node 1.4 reports a broken watch stream as an error and does not restart by itself;
    // the probe restarts it, as the agent must.
    assert.deepEqual(
      probe.errors.map((e) => e.code),
      ['ERR_STREAM_PREMATURE_CLOSE'],
    );
    assert.equal(api.requestCount('list', 'pods'), 1, 'no relist after a dropped watch');
    assert.equal(api.requestCount('watch', 'pods'), 2);
    const rewatch = api.requests.filter((r) => r.verb === 'watch')[1];
    assert.ok(rewatch.query.includes(`resourceVersion=${rvBefore}`), rewatch.query);
    assert.equal(probe.count('add', 'web-7d4b9c-x1'), 1, 'no duplicate ADDs');
  });

  it('a cleanly ended watch (server timeout) is re-established by the informer itself, from its resourceVersion', async () => {
    seedCluster();
    const probe = podInformer();
    await probe.start();
    const connects = probe.connects;
    assert.equal(api.endWatches(), 1);
    await waitFor('re-watch', () => (api.requestCount('watch', 'pods') === 2 ? true : undefined), 3000);
    const t = Date.now();
    api.create(makePod({ name: 'after-end', namespace: 'shop' }));
    await probe.saw('add', 'after-end', t);
    assert.deepEqual(probe.errors, []);
    assert.equal(probe.connects, connects + 1);
    assert.equal(api.requestCount('list', 'pods'), 1);
  });

  it('a 410 ERROR event on an open watch (expireWatches) makes the informer relist by itself, without an error', async () => {
    seedCluster();
    const probe = podInformer();
    await probe.start();
    assert.equal(api.expireWatches(), 1);
    await waitFor('relist', () => (api.requestCount('list', 'pods') === 2 ? true : undefined), 3000);
    const t = Date.now();
    api.create(makePod({ name: 'after-expiry', namespace: 'shop' }));
    await probe.saw('add', 'after-expiry', t);
    assert.deepEqual(probe.errors, []);
    assert.equal(probe.count('add', 'web-7d4b9c-x1'), 1, 'a relist of unchanged objects fires no events');
  });

  it('after stop() for 2 s, compact() and start() on the same port, the informer relists (410) and sees what changed', async () => {
    seedCluster();
    const probe = podInformer();
    await probe.start();
    const port = api.port;
    const oldRv = probe.informer.latestResourceVersion();
    await api.stop();
    await sleep(2000);
    api.create(makePod({ name: 'during-outage', namespace: 'shop', nodeName: 'node-a' }));
    api.delete('Pod', 'shop', 'web-7d4b9c-x2');
    api.compact();
    const t = Date.now();
    await api.start();
    assert.equal(api.port, port);
    await probe.saw('add', 'during-outage', t, 5000);
    await probe.saw('delete', 'web-7d4b9c-x2', t, 5000);
    process.stdout.write(`      back in sync ${Date.now() - t} ms after the server came back\n`);
    // While down: a broken stream, then refused connections (restarts re-watch, they do not relist).
    assert.equal(probe.errors[0].code, 'ERR_STREAM_PREMATURE_CLOSE');
    assert.ok(
      probe.errors.slice(1).every((e) => e.code === 'ECONNREFUSED'),
      JSON.stringify(probe.errors),
    );
    // Back up: the re-watch from the old resourceVersion got a 410 ERROR event, which made it relist.
    const after = api.requests.filter((r) => r.at >= t);
    assert.equal(after[0].verb, 'watch');
    assert.ok(after[0].query.includes(`resourceVersion=${oldRv}`), after[0].query);
    assert.equal(after[1].verb, 'list');
    assert.equal(after.filter((r) => r.verb === 'list').length, 1);
    assert.equal(api.requestCount('list', 'pods'), 2);
  });

  it('a watch from a resourceVersion older than compaction gets an ERROR event with a 410 Expired Status', async () => {
    seedCluster();
    const old = api.resourceVersion;
    api.create(makePod({ name: 'newer', namespace: 'shop' }));
    api.compact();
    const w = await rawWatch(kc, '/api/v1/pods', { resourceVersion: old });
    await waitFor('watch end', () => w.done(), 2000);
    assert.equal(w.done()?.err, null);
    assert.equal(w.lines.length, 1);
    assert.equal(w.lines[0].type, 'ERROR');
    assert.equal(w.lines[0].object.code, 410);
    assert.equal(w.lines[0].object.reason, 'Expired');

    // From the current resourceVersion (the compaction point) watching works.
    const ok = await rawWatch(kc, '/api/v1/pods', { resourceVersion: api.resourceVersion });
    cleanups.push(() => ok.controller.abort());
    api.create(makePod({ name: 'newest', namespace: 'shop' }));
    await waitFor('ADDED newest', () => ok.lines.find((l) => l.type === 'ADDED' && l.object.metadata?.name === 'newest'), 2000);
  });

  it('sends BOOKMARKs when asked (kind, apiVersion, resourceVersion only), honours sendInitialEvents and timeoutSeconds', async () => {
    seedCluster();
    const w = await rawWatch(kc, '/api/v1/pods', { resourceVersion: api.resourceVersion, allowWatchBookmarks: true });
    cleanups.push(() => w.controller.abort());
    const created = api.create(makePod({ name: 'marked', namespace: 'shop' }));
    await waitFor('two bookmarks', () => (w.lines.filter((l) => l.type === 'BOOKMARK').length >= 2 ? true : undefined), 3000);
    const bookmark = w.lines.filter((l) => l.type === 'BOOKMARK').pop();
    assert.deepEqual(bookmark?.object, { kind: 'Pod', apiVersion: 'v1', metadata: { resourceVersion: created.metadata.resourceVersion } });
    assert.equal(w.lines[0].type, 'ADDED');

    const none = await rawWatch(kc, '/api/v1/pods', { resourceVersion: api.resourceVersion });
    cleanups.push(() => none.controller.abort());
    await sleep(700);
    assert.equal(none.lines.length, 0, 'no bookmarks unless allowWatchBookmarks=true');

    const initial = await rawWatch(kc, '/api/v1/namespaces/shop/pods', {
      sendInitialEvents: true,
      resourceVersionMatch: 'NotOlderThan',
      allowWatchBookmarks: true,
      resourceVersion: '',
    });
    cleanups.push(() => initial.controller.abort());
    await waitFor('initial-events-end', () => initial.lines.find((l) => l.object.metadata?.annotations?.['k8s.io/initial-events-end'] === 'true'), 2000);
    assert.deepEqual(
      initial.lines.slice(0, 4).map((l) => l.type),
      ['ADDED', 'ADDED', 'ADDED', 'ADDED'],
    );
    assert.equal(initial.lines[4].type, 'BOOKMARK');

    const t = Date.now();
    const short = await rawWatch(kc, '/api/v1/nodes', { resourceVersion: api.resourceVersion, timeoutSeconds: 1 });
    await waitFor('timeout end', () => short.done(), 3000);
    assert.equal(short.done()?.err, null);
    assert.ok(Date.now() - t >= 900);
  });

  it('403 with the RBAC message for a forbidden resource, as an informer error naming it', async () => {
    seedCluster();
    api.setForbidden('pods', 'list');
    const err = await core.listPodForAllNamespaces().then(
      () => assert.fail('listed a forbidden resource'),
      (e: unknown) => e,
    );
    const { code, status } = apiError(err);
    assert.equal(code, 403);
    assert.equal(status.reason, 'Forbidden');
    assert.equal(
      status.message,
      'pods is forbidden: User "system:serviceaccount:flowtel:flowtel" cannot list resource "pods" in API group "" at the cluster scope',
    );
    api.setForbidden('replicasets', '*');
    const rsErr = await kc
      .makeApiClient(k8s.AppsV1Api)
      .listNamespacedReplicaSet({ namespace: 'shop' })
      .catch((e: unknown) => e);
    assert.match(apiError(rsErr).status.message ?? '', /cannot list resource "replicasets" in API group "apps" in the namespace "shop"/);

    const probe = podInformer();
    await probe.start();
    await waitFor('informer error', () => probe.errors[0], 2000);
    assert.equal(probe.errors[0].code, 403);
    assert.match(probe.errors[0].message, /pods is forbidden/);
    // Allowed again: the restarting informer gets its list.
    api.setForbidden('pods', 'list', false);
    await waitFor('informer synced', () => (probe.informer.list().length === 3 ? true : undefined), 3000);
  });

  it('serves 10,000 pods and 2,000 services: list and informer sync timings', async function () {
    this.timeout(120_000);
    let t = Date.now();
    const nodes = 50;
    for (let n = 0; n < nodes; n++) api.create(makeNode({ name: `node-${n}`, internalIP: `10.200.${n >> 8}.${n & 255}` }));
    for (let i = 0; i < 10_000; i++) {
      api.create(
        makePod({
          name: `pod-${i}`,
          namespace: `ns-${i % 40}`,
          nodeName: `node-${i % nodes}`,
          podIP: `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
          labels: { app: `app-${i % 200}`, 'pod-template-hash': 'abc123' },
          containers: [{ name: 'app' }, { name: 'proxy' }],
        }),
      );
    }
    for (let i = 0; i < 2_000; i++)
      api.create(
        makeService({
          name: `svc-${i}`,
          namespace: `ns-${i % 40}`,
          clusterIP: `10.96.${i >> 8}.${i & 255}`,
          selector: { app: `app-${i % 200}` },
          ports: [{ port: 80 }],
        }),
      );
    const createMs = Date.now() - t;
    const heap = process.memoryUsage().heapUsed;

    t = Date.now();
    const pods = await core.listPodForAllNamespaces();
    const listMs = Date.now() - t;
    assert.equal(pods.items.length, 10_000);
    t = Date.now();
    const services = await core.listServiceForAllNamespaces();
    const serviceListMs = Date.now() - t;
    assert.equal(services.items.length, 2_000);

    t = Date.now();
    let paged = 0;
    let token: string | undefined;
    do {
      const page = await core.listPodForAllNamespaces({ limit: 500, _continue: token });
      paged += page.items.length;
      token = page.metadata?._continue;
    } while (token);
    const pagedMs = Date.now() - t;
    assert.equal(paged, 10_000);

    t = Date.now();
    const nodeLocal = await core.listPodForAllNamespaces({ fieldSelector: 'spec.nodeName=node-7' });
    const fieldMs = Date.now() - t;
    assert.equal(nodeLocal.items.length, 200);

    t = Date.now();
    const probe = podInformer();
    await probe.start();
    const syncMs = Date.now() - t;
    assert.equal(probe.informer.list().length, 10_000);
    t = Date.now();
    api.create(makePod({ name: 'one-more', namespace: 'ns-1' }));
    const addMs = await probe.saw('add', 'one-more', t);

    process.stdout.write(
      `      created 10,000 pods + 2,000 services in ${createMs} ms (heap ${Math.round(heap / 2 ** 20)} MiB); ` +
        `list pods ${listMs} ms, services ${serviceListMs} ms, 20 pages of 500 ${pagedMs} ms, fieldSelector ${fieldMs} ms, ` +
        `informer sync ${syncMs} ms, then ADDED after ${addMs} ms\n`,
    );
    assert.ok(listMs < 10_000 && syncMs < 10_000, 'generous bound: the agent must sync in < 5 s');
  });

  it('stop() then start() twice leaves nothing open', async () => {
    const probe = podInformer();
    await probe.start();
    await api.stop();
    assert.equal(api.openWatches, 0);
    assert.equal(api.running, false);
    await api.start();
    await probe.stop();
    await waitFor('watch closed', () => (api.openWatches === 0 ? true : undefined), 2000);
    await api.stop();
    await api.start();
    assert.equal((await core.listNode()).items.length, 0);
  });
});
