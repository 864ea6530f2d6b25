import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { AgentLog } from '../../src/util/log';
import type { KubeClient } from '../../src/k8s/kube-client';
import { Reflector } from '../../src/k8s/reflector';

type Raw = Record<string, unknown>;
const pod = (name: string, uid: string, resourceVersion: string): Raw => ({ metadata: { namespace: 'shop', name, uid, resourceVersion } });

/** A client whose list returns `listed`, and whose watch hands its event handler to the test. */
function fakeClient(state: { listed: Raw[]; onEvent?: (type: string, raw: Raw) => void }): KubeClient {
  return {
    list: async (_path: string, _resource: string, _query: unknown, map: (item: unknown) => unknown) => ({
      items: state.listed.map(map),
      resourceVersion: String(state.listed.length),
    }),
    watch: async (_path: string, _query: unknown, onEvent: (type: string, raw: Raw) => void) => {
      state.onEvent = onEvent;
      return () => {};
    },
  } as unknown as KubeClient;
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('reflector', () => {
  it('on a relist, a pod deleted and recreated under the same name is the old pod deleted and a new one added', async () => {
    const state: { listed: Raw[]; onEvent?: (type: string, raw: Raw) => void } = { listed: [pod('web-0', 'uid-1', '1')] };
    const upserted: string[] = [];
    const deleted: string[] = [];
    const reflector = new Reflector<string>({
      resource: 'pods',
      path: '/api/v1/pods',
      transform: (raw) => (raw.metadata as { uid: string }).uid,
      onUpsert: (_key, uid) => upserted.push(uid),
      onDelete: (_key, uid) => deleted.push(uid),
      client: fakeClient(state),
      log: new AgentLog('error', new PassThrough()),
    });
    reflector.start();
    await settle();
    assert.deepEqual(upserted, ['uid-1']);

    // While the watch was away, web-0 was deleted and recreated (a StatefulSet pod); history is gone: 410, relist.
    state.listed = [pod('web-0', 'uid-2', '5')];
    state.onEvent?.('ERROR', { code: 410 });
    await settle();
    reflector.stop();
    assert.deepEqual(upserted, ['uid-1', 'uid-2']);
    assert.deepEqual(deleted, ['uid-1'], 'the old pod is deleted: its uid and addresses must not linger');
    assert.deepEqual([...reflector.items.values()], ['uid-2']);

    // A DELETED event of the new pod removes it.
    state.onEvent?.('DELETED', pod('web-0', 'uid-2', '6'));
    assert.deepEqual(deleted, ['uid-1', 'uid-2']);
    assert.equal(reflector.items.size, 0);
  });
});
