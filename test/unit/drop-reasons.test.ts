import assert from 'node:assert/strict';
import { selectedReasons } from '../../src/probes/drops';
import { EnumNames } from '../../src/probes/shared/enum-names';
import { defaultConfig } from '../../src/config/config';

const reasons = new EnumNames(
  { SKB_DROP_REASON_NOT_SPECIFIED: 2, SKB_DROP_REASON_NO_SOCKET: 3, SKB_DROP_REASON_NETFILTER_DROP: 9, SKB_DROP_REASON_MAX: 130 },
  'SKB_DROP_REASON_',
);

describe('drop reason selection', () => {
  it('counts every reason but the denied ones when nothing is allowed explicitly', () => {
    assert.deepEqual(selectedReasons(reasons, { allowReasons: [], denyReasons: ['NOT_SPECIFIED'] }).values.sort(), [3, 9]);
  });
  it('counts only the allowed reasons, minus denied ones', () => {
    assert.deepEqual(selectedReasons(reasons, { allowReasons: ['NETFILTER_DROP', 'NO_SOCKET'], denyReasons: ['NO_SOCKET'] }).values, [9]);
  });
  it('ignores, and reports by field, a name this kernel does not have: the default deny list names QUEUE_PURGE, which 6.1 lacks', () => {
    // The agent's own default on a kernel without QUEUE_PURGE (6.5 and older): the rest still applies.
    const selection = selectedReasons(reasons, defaultConfig('.').probes.drops);
    assert.deepEqual(selection.values.sort(), [3, 9]);
    assert.deepEqual(selection.unknown, [{ field: 'probes.drops.denyReasons[1]', name: 'QUEUE_PURGE' }]);
  });
  it('counts nothing when every allowed name is unknown to this kernel, rather than everything', () => {
    const selection = selectedReasons(reasons, { allowReasons: ['NETFILTER_DORP'], denyReasons: [] });
    assert.deepEqual(selection.values, []);
    assert.deepEqual(selection.unknown, [{ field: 'probes.drops.allowReasons[0]', name: 'NETFILTER_DORP' }]);
  });
});
