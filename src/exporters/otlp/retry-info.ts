/**
 * The delay a gRPC server asks for before a retry: google.rpc.RetryInfo in
 * the grpc-status-details-bin trailer (a base64 google.rpc.Status). The OTLP
 * specification makes RESOURCE_EXHAUSTED retryable only when the server
 * sends it, and asks clients to wait as long as it says.
 *
 *   Status    { int32 code = 1; string message = 2; repeated Any details = 3; }
 *   Any       { string type_url = 1; bytes value = 2; }
 *   RetryInfo { Duration retry_delay = 1; }
 *   Duration  { int64 seconds = 1; int32 nanos = 2; }
 */
const RETRY_INFO_TYPE = 'type.googleapis.com/google.rpc.RetryInfo';

/** The fields of one protobuf message: number → varints and length-delimited values, in order. Throws on a malformed one. */
function fields(message: Uint8Array): Map<number, Array<number | Uint8Array>> {
  const out = new Map<number, Array<number | Uint8Array>>();
  let at = 0;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      if (at >= message.length || shift > 63) throw new Error('a varint runs past the message');
      const byte = message[at++];
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
  };
  while (at < message.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    let value: number | Uint8Array;
    switch (tag & 7) {
      case 0:
        value = varint();
        break;
      case 1:
        at += 8;
        continue;
      case 2: {
        const length = varint();
        if (at + length > message.length) throw new Error('a field runs past the message');
        value = message.subarray(at, at + length);
        at += length;
        break;
      }
      case 5:
        at += 4;
        continue;
      default:
        throw new Error(`wire type ${tag & 7} is not read here`);
    }
    const list = out.get(field) ?? [];
    list.push(value);
    out.set(field, list);
  }
  return out;
}

function bytesAt(message: Map<number, Array<number | Uint8Array>>, field: number): Uint8Array[] {
  return (message.get(field) ?? []).filter((v): v is Uint8Array => v instanceof Uint8Array);
}

function numberAt(message: Map<number, Array<number | Uint8Array>>, field: number): number {
  const value = message.get(field)?.at(-1);
  return typeof value === 'number' ? value : 0;
}

/** RetryInfo's delay in ms from a grpc-status-details-bin value; undefined when it has none or cannot be read. */
export function retryDelayFromStatusDetails(base64: string | string[] | undefined): number | undefined {
  const text = Array.isArray(base64) ? base64[0] : base64;
  if (!text) return undefined;
  try {
    const status = fields(Buffer.from(text, 'base64'));
    for (const any of bytesAt(status, 3)) {
      const detail = fields(any);
      const [typeUrl] = bytesAt(detail, 1);
      if (!typeUrl || Buffer.from(typeUrl).toString() !== RETRY_INFO_TYPE) continue;
      const [value] = bytesAt(detail, 2);
      const [duration] = value ? bytesAt(fields(value), 1) : [];
      if (!duration) return 0;
      const d = fields(duration);
      return numberAt(d, 1) * 1000 + Math.floor(numberAt(d, 2) / 1e6);
    }
  } catch {
    // A trailer we cannot read is no instruction to wait.
  }
  return undefined;
}
