import assert from 'node:assert/strict';
import { selectedReasons } from '../../src/probes/drops';
import { EnumNames } from '../../src/probes/shared/enum-names';
import { ConfigError } from '../../src/config/schema';

const reasons = new EnumNames(
  { SKB_DROP_REASON_NOT_SPECIFIED: 2, SKB_DROP_REASON_NO_SOCKET: 3, SKB_DROP_REASON_NETFILTER_DROP: 9, SKB_DROP_REASON_MAX: 130 },
  'SKB_DROP_REASON_',
);

describe('drop reason selection', () => {
  it('counts every reason but the denied ones when nothing is allowed explicitly', () => {
    assert.deepEqual(selectedReasons(reasons, { allowReasons: [], denyReasons: ['NOT_SPECIFIED'] }).sort(), [3, 9]);
  });
  it('counts only the allowed reasons, minus denied ones', () => {
    assert.deepEqual(selectedReasons(reasons, { allowReasons: ['NETFILTER_DROP', 'NO_SOCKET'], denyReasons: ['NO_SOCKET'] }), [9]);
  });
  it('rejects a reason this kernel does not have, naming the field and listing the known ones', () => {
    assert.throws(
      () => selectedReasons(reasons, { allowReasons: ['NETFILTER_DORP'], denyReasons: [] }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.field === 'probes.drops.allowReasons[0]' &&
        /"NETFILTER_DORP".*a drop reason of this kernel \(NOT_SPECIFIED, NO_SOCKET, NETFILTER_DROP\)/.test(err.message),
    );
  });
});
