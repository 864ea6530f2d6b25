import assert from 'node:assert/strict';
import { formatAddress } from '../../src/probes/shared/tuple';

function bytes(hex: string): Buffer {
  return Buffer.from(hex.replace(/[^0-9a-f]/g, ''), 'hex');
}

describe('address formatting', () => {
  it('shows IPv4-mapped addresses as dotted quads', () => {
    assert.equal(formatAddress(bytes('00000000 00000000 0000ffff 0ae70702')), '10.231.7.2');
  });
  it('compresses the longest zero run of IPv6 addresses', () => {
    assert.equal(formatAddress(bytes('00000000 00000000 00000000 00000001')), '::1');
    assert.equal(formatAddress(bytes('20010db8 00000000 00010000 00000001')), '2001:db8::1:0:0:1');
    assert.equal(formatAddress(bytes('fe800000 00000000 02005eff fe001234')), 'fe80::200:5eff:fe00:1234');
    assert.equal(formatAddress(bytes('20010db8 00010001 00010001 00010001')), '2001:db8:1:1:1:1:1:1');
    assert.equal(formatAddress(bytes('00000000 00000000 00000000 00000000')), '::');
  });
});
