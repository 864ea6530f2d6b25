/**
 * A throw-away certificate authority and a server certificate for the test
 * Kubernetes API server, made with Node's own crypto at run time: no network,
 * no openssl binary, no npm package. Node can make keys and sign bytes but
 * has no certificate builder, so the X.509 structure is written here in DER
 * (RFC 5280), which is a small, fixed set of ASN.1 shapes.
 */
import crypto from 'node:crypto';
import net from 'node:net';

export interface TestCertificates {
  /** PEM of the CA certificate: what a kubeconfig's certificate-authority-data carries. */
  caCert: string;
  /** PEM of the server certificate, signed by the CA. */
  serverCert: string;
  /** PEM (PKCS#8) of the server's private key. */
  serverKey: string;
  /** A client certificate (clientAuth) the same CA signed, and its key: for servers that ask for one. */
  clientCert: string;
  clientKey: string;
}

export interface CertificateOptions {
  /** Host names and IP addresses the server certificate is valid for. */
  hosts?: string[];
  /** Validity in days from one hour ago (the hour absorbs clock skew between processes). */
  days?: number;
  commonName?: string;
}

// ---- DER encoding: tag, length, content --------------------------------------------------

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let length: Buffer;
  if (n < 0x80) length = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    length = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), length, content]);
}

const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items));
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 + n, inner);
const TRUE = Buffer.from([0x01, 0x01, 0xff]);

/** A non-negative INTEGER from big-endian bytes (a leading 0 keeps the sign bit clear). */
function integer(bytes: Buffer): Buffer {
  let b = bytes;
  while (b.length > 1 && b[0] === 0 && (b[1] & 0x80) === 0) b = b.subarray(1);
  if (b[0] & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out: number[] = [parts[0] * 40 + parts[1]];
  for (const p of parts.slice(2)) {
    const groups: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) groups.unshift(0x80 | (v & 0x7f));
    out.push(...groups);
  }
  return tlv(0x06, Buffer.from(out));
}

/** BIT STRING of whole bytes, or of named bits given as a byte with its unused trailing bits. */
function bitString(b: Buffer, unusedBits = 0): Buffer {
  return tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), b]));
}

/** UTCTime up to 2049, GeneralizedTime after, as RFC 5280 4.1.2.5 requires. */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'; // YYYYMMDDHHMMSSZ
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2))) : tlv(0x18, Buffer.from(iso));
}

const OID = {
  commonName: '2.5.4.3',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
};

const name = (cn: string): Buffer => seq(set(seq(oid(OID.commonName), utf8(cn))));

function extension(id: string, value: Buffer, critical = false): Buffer {
  return critical ? seq(oid(id), TRUE, octets(value)) : seq(oid(id), octets(value));
}

/** The key identifier RFC 5280 4.2.1.2 suggests: SHA-1 of the public key's bits. */
function keyId(publicKey: crypto.KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x ?? '', 'base64url'), Buffer.from(jwk.y ?? '', 'base64url')]);
  return crypto.createHash('sha1').update(point).digest();
}

function subjectAltName(hosts: string[]): Buffer {
  const names = hosts.map((h) => {
    if (net.isIPv4(h)) return tlv(0x87, Buffer.from(h.split('.').map(Number)));
    if (net.isIPv6(h)) return tlv(0x87, ipv6Bytes(h));
    return tlv(0x82, Buffer.from(h, 'ascii')); // dNSName, IA5String
  });
  return seq(...names);
}

function ipv6Bytes(addr: string): Buffer {
  const [head, tail = ''] = addr.split('::');
  const left = head ? head.split(':') : [];
  const right = addr.includes('::') && tail ? tail.split(':') : [];
  const groups = [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  return Buffer.concat(groups.map((g) => Buffer.from(g.padStart(4, '0'), 'hex')));
}

interface CertSpec {
  subject: string;
  issuer: string;
  publicKey: crypto.KeyObject;
  issuerPublicKey: crypto.KeyObject;
  signingKey: crypto.KeyObject;
  ca: boolean;
  /** A leaf's extended key usage: a TLS server's certificate, or a client's. */
  usage?: 'serverAuth' | 'clientAuth';
  hosts: string[];
  days: number;
}

function certificate(spec: CertSpec): string {
  const notBefore = new Date(Date.now() - 3600_000);
  const notAfter = new Date(notBefore.getTime() + spec.days * 86400_000);
  const serial = crypto.randomBytes(16);
  serial[0] &= 0x7f;
  const extensions = spec.ca
    ? [
        extension(OID.basicConstraints, seq(TRUE), true),
        // digitalSignature, keyCertSign, cRLSign = bits 0, 5, 6 -> 1000 0110, one unused trailing bit.
        extension(OID.keyUsage, bitString(Buffer.from([0x86]), 1), true),
        extension(OID.subjectKeyId, octets(keyId(spec.publicKey))),
      ]
    : [
        extension(OID.basicConstraints, seq(), true),
        // digitalSignature only (an ECDSA TLS server key signs the handshake) -> 1000 0000, 7 unused bits.
        extension(OID.keyUsage, bitString(Buffer.from([0x80]), 7), true),
        extension(OID.extKeyUsage, seq(oid(OID[spec.usage ?? 'serverAuth']))),
        extension(OID.subjectAltName, subjectAltName(spec.hosts)),
        extension(OID.subjectKeyId, octets(keyId(spec.publicKey))),
        extension(OID.authorityKeyId, seq(tlv(0x80, keyId(spec.issuerPublicKey)))),
      ];
  const algorithm = seq(oid(OID.ecdsaWithSha256));
  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))), // version 3
    integer(serial),
    algorithm,
    name(spec.issuer),
    seq(time(notBefore), time(notAfter)),
    name(spec.subject),
    spec.publicKey.export({ format: 'der', type: 'spki' }),
    explicit(3, seq(...extensions)),
  );
  // Node's ECDSA signature is already the DER Ecdsa-Sig-Value X.509 wants.
  const signature = crypto.sign('sha256', tbs, spec.signingKey);
  const der = seq(tbs, algorithm, bitString(signature));
  const body = der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .trimEnd();
  return `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
}

/** A fresh CA and a server and a client certificate it signed, P-256 keys (fast to make, small handshakes). */
export function makeTestCertificates(options: CertificateOptions = {}): TestCertificates {
  const hosts = options.hosts ?? ['127.0.0.1', 'localhost', '::1'];
  const days = options.days ?? 7;
  const ca = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const server = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const caName = `flowtel-test-ca-${crypto.randomBytes(4).toString('hex')}`;
  const caCert = certificate({
    subject: caName,
    issuer: caName,
    publicKey: ca.publicKey,
    issuerPublicKey: ca.publicKey,
    signingKey: ca.privateKey,
    ca: true,
    hosts: [],
    days,
  });
  const serverCert = certificate({
    subject: options.commonName ?? 'kube-apiserver',
    issuer: caName,
    publicKey: server.publicKey,
    issuerPublicKey: ca.publicKey,
    signingKey: ca.privateKey,
    ca: false,
    hosts,
    days,
  });
  const client = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const clientCert = certificate({
    subject: 'flowtel-test-client',
    issuer: caName,
    publicKey: client.publicKey,
    issuerPublicKey: ca.publicKey,
    signingKey: ca.privateKey,
    ca: false,
    usage: 'clientAuth',
    hosts,
    days,
  });
  const pem = (key: crypto.KeyObject) => key.export({ format: 'pem', type: 'pkcs8' }).toString();
  return { caCert, serverCert, serverKey: pem(server.privateKey), clientCert, clientKey: pem(client.privateKey) };
}
