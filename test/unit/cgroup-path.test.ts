import assert from 'node:assert/strict';
import { kubeletCgroupPath, parseKubeletCgroupPath, type ContainerRuntime, type QosClass } from '../../src/k8s/cgroup-path';

const UID = '3f0a6a5e-1b7c-4d2e-9f10-2a3b4c5d6e7f';
const UID_ = UID.replace(/-/g, '_');
const ID = 'a'.repeat(8) + '0123456789abcdef'.repeat(3) + 'b'.repeat(8);

describe('kubelet cgroup path parsing', () => {
  const qosClasses: QosClass[] = ['guaranteed', 'burstable', 'besteffort'];
  const systemdRuntimes: Array<[string, ContainerRuntime]> = [
    ['cri-containerd', 'containerd'],
    ['crio', 'cri-o'],
    ['docker', 'docker'],
  ];

  for (const qos of qosClasses) {
    const qosSlice = qos === 'guaranteed' ? '' : `kubepods-${qos}.slice/`;
    const podSlice = qos === 'guaranteed' ? `kubepods-pod${UID_}.slice` : `kubepods-${qos}-pod${UID_}.slice`;
    for (const [prefix, runtime] of systemdRuntimes) {
      it(`systemd driver, ${qos}, ${prefix}`, () => {
        const path = `kubepods.slice/${qosSlice}${podSlice}/${prefix}-${ID}.scope`;
        assert.deepEqual(parseKubeletCgroupPath(path), { podUid: UID, qosClass: qos, driver: 'systemd', containerId: ID, runtime });
      });
    }
    it(`systemd driver, ${qos}, pod-level cgroup`, () => {
      assert.deepEqual(parseKubeletCgroupPath(`/kubepods.slice/${qosSlice}${podSlice}`), { podUid: UID, qosClass: qos, driver: 'systemd' });
    });

    const qosDir = qos === 'guaranteed' ? '' : `${qos}/`;
    it(`cgroupfs driver, ${qos}, containerd/docker (bare id)`, () => {
      assert.deepEqual(parseKubeletCgroupPath(`/kubepods/${qosDir}pod${UID}/${ID}`), {
        podUid: UID,
        qosClass: qos,
        driver: 'cgroupfs',
        containerId: ID,
        runtime: 'unknown',
      });
    });
    it(`cgroupfs driver, ${qos}, cri-o`, () => {
      assert.deepEqual(parseKubeletCgroupPath(`kubepods/${qosDir}pod${UID}/crio-${ID}`), {
        podUid: UID,
        qosClass: qos,
        driver: 'cgroupfs',
        containerId: ID,
        runtime: 'cri-o',
      });
    });
    it(`cgroupfs driver, ${qos}, pod-level cgroup`, () => {
      assert.deepEqual(parseKubeletCgroupPath(`kubepods/${qosDir}pod${UID}`), { podUid: UID, qosClass: qos, driver: 'cgroupfs' });
    });
  }

  it('finds kubepods below a prefix (kind node, nested kubelet)', () => {
    const nested = `system.slice/docker-${ID}.scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${UID_}.slice/cri-containerd-${ID}.scope`;
    assert.equal(parseKubeletCgroupPath(nested)?.podUid, UID);
    assert.equal(parseKubeletCgroupPath(nested)?.qosClass, 'besteffort');
    assert.equal(parseKubeletCgroupPath(`/kubepods/burstable/pod${UID}/${ID}`)?.podUid, UID);
  });

  it('treats runtime helper cgroups (conmon) as the pod itself', () => {
    const conmon = `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/crio-conmon-${ID}.scope`;
    assert.deepEqual(parseKubeletCgroupPath(conmon), { podUid: UID, qosClass: 'burstable', driver: 'systemd' });
  });

  it('returns undefined outside kubepods and for malformed names', () => {
    for (const path of [
      '',
      '/',
      'system.slice/sshd.service',
      'user.slice/user-0.slice/session-1.scope',
      'kubepods.slice',
      'kubepods.slice/kubepods-burstable.slice',
      'kubepods/burstable',
      `kubepods/burstable/pod${UID.slice(0, 30)}/${ID}`,
      `kubepods.slice/kubepods-pod${UID_}x.slice`,
      `notkubepods/pod${UID}/${ID}`,
    ]) {
      assert.equal(parseKubeletCgroupPath(path), undefined, path);
    }
  });

  it('ignores a container segment that is not a 64-hex id', () => {
    assert.deepEqual(parseKubeletCgroupPath(`kubepods/pod${UID}/${ID.slice(1)}`), { podUid: UID, qosClass: 'guaranteed', driver: 'cgroupfs' });
  });

  it('round-trips the paths kubeletCgroupPath builds', () => {
    for (const driver of ['systemd', 'cgroupfs'] as const) {
      for (const qosClass of qosClasses) {
        for (const runtime of ['containerd', 'cri-o', 'docker'] as const) {
          const parsed = parseKubeletCgroupPath(kubeletCgroupPath({ driver, qosClass, podUid: UID, containerId: ID, runtime }));
          assert.equal(parsed?.podUid, UID);
          assert.equal(parsed?.containerId, ID);
          assert.equal(parsed?.qosClass, qosClass);
          assert.equal(parsed?.driver, driver);
        }
      }
    }
  });
});
