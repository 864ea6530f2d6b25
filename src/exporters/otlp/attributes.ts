/**
 * Attributes on the wire (repeated KeyValue), and the encoding cache that
 * makes a 100,000-flow export cheap: a flow's attributes are its pod's
 * (shared by all the pod's flows), its peer's Kubernetes identity (shared by
 * the flows of one peer pod), the group's (shared by a direction) and a few
 * of the flow's own (address, port). A series hands them over as parts; a
 * frozen part is encoded once and its bytes copied into every point after.
 */
import type { Attributes, AttributeValue } from '@opentelemetry/api';
import { ProtoWriter, WIRE_FIXED64, WIRE_LENGTH, WIRE_VARINT } from './proto-writer';

/**
 * A data point's attributes in parts, merged in order (a later part's key
 * wins, as in Object.assign). Parts that are frozen are shared between many
 * points and are encoded once; the rest are the point's own.
 */
export const ATTRIBUTE_PARTS = Symbol('flowtel.attributeParts');

export interface PartedPoint {
  readonly attributes: Attributes;
  [ATTRIBUTE_PARTS]?(): readonly Attributes[] | undefined;
}

const INT64_MIN = -(2 ** 63);
const INT64_END = 2 ** 63;

/** Attributes as repeated KeyValue in `field` of the enclosing message. */
export function writeAttributes(w: ProtoWriter, attributes: Attributes, field: number): void {
  for (const key in attributes) {
    if (!Object.prototype.hasOwnProperty.call(attributes, key)) continue;
    w.tag(field, WIRE_LENGTH);
    const keyValue = w.begin();
    writeKeyValueBody(w, key, attributes[key]);
    w.end(keyValue);
  }
}

function writeKeyValueBody(w: ProtoWriter, key: string, value: unknown): void {
  w.tag(1, WIRE_LENGTH);
  w.string(key);
  w.tag(2, WIRE_LENGTH);
  const anyValue = w.begin();
  writeAnyValue(w, value);
  w.end(anyValue);
}

/** The body of an AnyValue; a value of no OTLP type (undefined, a function) is an empty AnyValue. */
function writeAnyValue(w: ProtoWriter, value: unknown): void {
  switch (typeof value) {
    case 'string':
      w.tag(1, WIRE_LENGTH);
      w.string(value);
      return;
    case 'boolean':
      w.tag(2, WIRE_VARINT);
      w.uint32(value ? 1 : 0);
      return;
    case 'number':
      if (Number.isInteger(value) && value >= INT64_MIN && value < INT64_END) {
        w.tag(3, WIRE_VARINT);
        w.int64(value);
      } else {
        w.tag(4, WIRE_FIXED64);
        w.double(value);
      }
      return;
    case 'object':
      if (value === null) return;
      if (value instanceof Uint8Array) {
        w.tag(7, WIRE_LENGTH);
        w.bytes(value);
      } else if (Array.isArray(value)) {
        w.tag(5, WIRE_LENGTH);
        const array = w.begin();
        for (const item of value as AttributeValue[]) {
          w.tag(1, WIRE_LENGTH);
          const element = w.begin();
          writeAnyValue(w, item);
          w.end(element);
        }
        w.end(array);
      } else {
        w.tag(6, WIRE_LENGTH);
        const list = w.begin();
        writeAttributes(w, value as Attributes, 1);
        w.end(list);
      }
      return;
    default:
      return;
  }
}

/** A frozen part's KeyValues, ready to copy, and which keys it sets. */
interface EncodedPart {
  bytes: Uint8Array;
  keysLow: number;
  keysHigh: number;
}

/** Key bits: 30 in each of two numbers; keys beyond that many are checked by a full merge. */
const BITS_PER_WORD = 30;
const OVERFLOW = -1;

/**
 * Writes parted attributes. Parts may only be written separately when no two
 * of them set the same key (then the merge is just their union); each known
 * key has a bit, so that check is two ANDs per part. Parts are written as
 * they are checked; on a key that an earlier part set (or one without a
 * bit) the writer rewinds and writes the merge instead, as the point's
 * `attributes` would be.
 */
export class PartedAttributeWriter {
  /** Encodings of frozen parts, by the field number their KeyValues are tagged with. */
  private readonly encoded = new Map<number, WeakMap<Attributes, EncodedPart>>();
  private readonly keyBits = new Map<string, number>();
  private readonly scratch = new ProtoWriter(1024);
  private maskLow = 0;
  private maskHigh = 0;

  /** The point's attributes in `field`: from its parts when it has them. */
  write(w: ProtoWriter, point: PartedPoint, field: number): void {
    const parts = point[ATTRIBUTE_PARTS]?.();
    if (parts === undefined) {
      writeAttributes(w, point.attributes, field);
      return;
    }
    const byPart = this.encodingsFor(field);
    const start = w.pos;
    let low = 0;
    let high = 0;
    for (const part of parts) {
      if (Object.isFrozen(part)) {
        const encoded = this.encodedPart(byPart, part, field);
        w.raw(encoded.bytes);
        this.maskLow = encoded.keysLow;
        this.maskHigh = encoded.keysHigh;
      } else {
        writeAttributes(w, part, field);
        this.maskOf(part);
      }
      if (this.maskLow === OVERFLOW || (low & this.maskLow) !== 0 || (high & this.maskHigh) !== 0) {
        w.pos = start;
        writeAttributes(w, Object.assign({}, ...parts) as Attributes, field);
        return;
      }
      low |= this.maskLow;
      high |= this.maskHigh;
    }
  }

  private encodingsFor(field: number): WeakMap<Attributes, EncodedPart> {
    let byPart = this.encoded.get(field);
    if (!byPart) this.encoded.set(field, (byPart = new WeakMap()));
    return byPart;
  }

  private encodedPart(byPart: WeakMap<Attributes, EncodedPart>, part: Attributes, field: number): EncodedPart {
    let encoded = byPart.get(part);
    if (!encoded) {
      this.scratch.reset();
      writeAttributes(this.scratch, part, field);
      this.maskOf(part);
      encoded = { bytes: this.scratch.copy(), keysLow: this.maskLow, keysHigh: this.maskHigh };
      byPart.set(part, encoded);
    }
    return encoded;
  }

  /** Sets maskLow/maskHigh to the bits of the part's keys (maskLow OVERFLOW: some key has no bit). */
  private maskOf(part: Attributes): void {
    let low = 0;
    let high = 0;
    for (const key in part) {
      if (!Object.prototype.hasOwnProperty.call(part, key)) continue;
      let bit = this.keyBits.get(key);
      if (bit === undefined) {
        bit = this.keyBits.size < 2 * BITS_PER_WORD ? this.keyBits.size : OVERFLOW;
        // Attribute names are a small fixed vocabulary; past 60 of them, points merge instead.
        if (bit !== OVERFLOW) this.keyBits.set(key, bit);
      }
      if (bit === OVERFLOW) {
        this.maskLow = OVERFLOW;
        this.maskHigh = 0;
        return;
      }
      if (bit < BITS_PER_WORD) low |= 1 << bit;
      else high |= 1 << (bit - BITS_PER_WORD);
    }
    this.maskLow = low;
    this.maskHigh = high;
  }
}
