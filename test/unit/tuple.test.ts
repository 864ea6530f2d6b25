import assert from 'node:assert/strict';
import { EphemeralPorts, TupleDecoder, formatAddress } from '../../src/bpf/tuple';

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

describe('client ports (EphemeralPorts) and the repeat key of a tuple', () => {
  const ports = new EphemeralPorts(32768, 60999);
  // struct flowtel_tuple at offset 8 of an event: saddr, daddr, sport, dport, family.
  const layout = {
    size: 48,
    members: {
      'tuple.saddr': { offset: 8, size: 16 },
      'tuple.daddr': { offset: 24, size: 16 },
      'tuple.sport': { offset: 40, size: 2 },
      'tuple.dport': { offset: 42, size: 2 },
      'tuple.family': { offset: 44, size: 2 },
    },
  };
  const decoder = new TupleDecoder('test_event', layout, 'tuple');
  function event(local: string, localPort: number, peer: string, peerPort: number): Buffer {
    const buf = Buffer.alloc(48);
    bytes(local).copy(buf, 8);
    bytes(peer).copy(buf, 24);
    buf.writeUInt16LE(localPort, 40);
    buf.writeUInt16LE(peerPort, 42);
    buf.writeUInt16LE(2, 44);
    return buf;
  }
  const A = '00000000 00000000 0000ffff 0ae70702';
  const B = '00000000 00000000 0000ffff 0ae70703';

  it('calls a side the client only when its port alone is ephemeral', () => {
    assert.equal(ports.clientSide(45000, 80), 'local');
    assert.equal(ports.clientSide(8080, 45000), 'peer');
    assert.equal(ports.clientSide(45000, 50000), undefined);
    assert.equal(ports.clientSide(0, 7001), undefined, 'a connect that never got a port');
    assert.equal(ports.clientSide(32767, 61000), undefined, 'range bounds are inclusive');
    assert.equal(ports.clientSide(32768, 80), 'local');
    assert.equal(ports.clientSide(60999, 80), 'local');
  });

  it('picks the server port as the BPF flow key does (flowtel_server_port)', () => {
    assert.equal(ports.serverPort(45000, 80), 80);
    assert.equal(ports.serverPort(8080, 45000), 8080);
    assert.equal(ports.serverPort(45000, 50000), 45000, 'both ephemeral: the lower');
    assert.equal(ports.serverPort(8080, 9090), 8080, 'neither ephemeral: the lower');
    assert.equal(ports.serverPort(80, 0), 80, 'a listening socket (no peer port) keys by its own port, not 0');
    assert.equal(ports.serverPort(0, 7001), 7001, 'a connect that never got a port');
  });

  it('folds new connections of one client to one server, and nothing else', () => {
    const key = (l: string, lp: number, p: string, pp: number) => decoder.repeatKey(event(l, lp, p, pp), 0, ports);
    assert.equal(key(A, 40001, B, 7001), key(A, 40002, B, 7001), 'client port left out');
    assert.equal(key(B, 7001, A, 40001), key(B, 7001, A, 40002), 'client on the peer side');
    assert.notEqual(key(A, 40001, B, 7001), key(A, 40001, B, 7002), 'another server port');
    assert.notEqual(key(A, 40001, B, 7001), key(B, 40001, B, 7001), 'another local address');
    assert.notEqual(key(A, 40001, B, 7001), key(A, 40001, A, 7001), 'another peer address');
    assert.notEqual(key(A, 40001, B, 50001), key(A, 40002, B, 50001), 'both ephemeral: no telling, nothing folded');
    assert.notEqual(key(A, 7001, B, 40001), key(A, 40001, B, 7001), 'which side is the client matters');
  });

  it('shows the client side without its port in summaries', () => {
    assert.equal(ports.endpointText('10.0.0.1', 40001, 'local', 'local'), '10.0.0.1');
    assert.equal(ports.endpointText('10.0.0.2', 7001, 'peer', 'local'), '10.0.0.2:7001');
    assert.equal(ports.endpointText('10.0.0.1', 40001, 'local', undefined), '10.0.0.1:40001');
  });
});
