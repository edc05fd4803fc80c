/**
 * The protobuf wire format (https://protobuf.dev/programming-guides/encoding/), as much of it as
 * ONNX needs: varints (with int64 in full), fixed 32/64-bit values, length-delimited fields and
 * packed repeated scalars. No generated code and no schema: the ONNX codec on top says which
 * field is which.
 */

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_BYTES = 2;
export const WIRE_START_GROUP = 3;
export const WIRE_END_GROUP = 4;
export const WIRE_FIXED32 = 5;

/** A field the codec does not model, kept as its exact bytes (tag included) to be written back. */
export interface UnknownField {
  field: number;
  bytes: Uint8Array;
}

export class ProtoError extends Error {}

const TEXT_DECODER = new TextDecoder("utf-8");
const TEXT_ENCODER = new TextEncoder();

/** Reads one message's fields in order; nested messages are read by a reader over their bytes. */
export class ProtoReader {
  readonly buf: Uint8Array;
  pos: number;
  /** Where this reader stops (moved while a packed run is read). */
  end: number;
  readonly #view: DataView;
  /** Where the current field's tag began (for keeping unknown fields byte for byte). */
  #tagStart = 0;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    // A plain view even of a Buffer: subarray() stays a view, slice() is a copy, for every caller.
    this.buf = Object.getPrototypeOf(buf) === Uint8Array.prototype ? buf : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = start;
    this.end = end;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  done(): boolean {
    return this.pos >= this.end;
  }

  /** The next field's number and wire type. */
  tag(): { field: number; wire: number } {
    this.#tagStart = this.pos;
    const t = this.varint();
    const field = Math.floor(t / 8);
    const wire = t % 8;
    if (field < 1) throw new ProtoError(`field number ${field} at byte ${this.#tagStart}`);
    return { field, wire };
  }

  /** An unsigned varint that fits a JavaScript number exactly (lengths, tags, small values). */
  varint(): number {
    const start = this.pos;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.end) throw new ProtoError(`truncated varint at byte ${this.pos}`);
      const byte = this.buf[this.pos++]!;
      result += (byte & 0x7f) * mul;
      if (byte < 0x80) {
        if (!Number.isSafeInteger(result)) break;
        return result;
      }
      mul *= 128;
    }
    this.pos = start;
    const v = this.uint64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtoError(`varint ${v} at byte ${start} is too large here`);
    return Number(v);
  }

  /** A varint as a 64-bit unsigned bigint. */
  uint64(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtoError(`truncated varint at byte ${this.pos}`);
      const byte = this.buf[this.pos++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return BigInt.asUintN(64, result);
      shift += 7n;
    }
    throw new ProtoError(`varint longer than 10 bytes at byte ${this.pos}`);
  }

  /** A varint as a 64-bit signed bigint (protobuf's int64: two's complement, not zigzag). */
  int64(): bigint {
    return BigInt.asIntN(64, this.uint64());
  }

  /** An int64 field as a number; throws when it does not fit one exactly. */
  int64Number(): number {
    const start = this.pos;
    const v = this.int64();
    const num = Number(v);
    if (!Number.isSafeInteger(num)) throw new ProtoError(`int64 ${v} at byte ${start} does not fit a number`);
    return num;
  }

  /** protobuf's int32 (and enums): a varint, negative values sign-extended to 64 bits. */
  int32(): number {
    return Number(BigInt.asIntN(32, this.uint64()));
  }

  float(): number {
    this.#need(4);
    const v = this.#view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  double(): number {
    this.#need(8);
    const v = this.#view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** A length-delimited field's bytes: a view of the input, not a copy. */
  bytes(): Uint8Array {
    const len = this.varint();
    this.#need(len);
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  string(): string {
    return TEXT_DECODER.decode(this.bytes());
  }

  /** A reader over a nested message. */
  message(): ProtoReader {
    const len = this.varint();
    this.#need(len);
    const r = new ProtoReader(this.buf, this.pos, this.pos + len);
    this.pos += len;
    return r;
  }

  /** Skips the field whose tag was just read and returns it whole, for writing back unchanged. */
  unknown(field: number, wire: number): UnknownField {
    this.skip(wire);
    return { field, bytes: this.buf.slice(this.#tagStart, this.pos) };
  }

  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.uint64();
        return;
      case WIRE_FIXED64:
        this.#need(8);
        this.pos += 8;
        return;
      case WIRE_BYTES: {
        const len = this.varint();
        this.#need(len);
        this.pos += len;
        return;
      }
      case WIRE_FIXED32:
        this.#need(4);
        this.pos += 4;
        return;
      case WIRE_START_GROUP:
        for (;;) {
          const t = this.tag();
          if (t.wire === WIRE_END_GROUP) return;
          this.skip(t.wire);
        }
      default:
        throw new ProtoError(`unknown wire type ${wire} at byte ${this.#tagStart}`);
    }
  }

  /**
   * A repeated scalar, packed or not (a reader must accept both): calls `one` once per value.
   */
  repeated(wire: number, scalarWire: number, one: () => void): void {
    if (wire === WIRE_BYTES && scalarWire !== WIRE_BYTES) {
      const len = this.varint();
      this.#need(len);
      const stop = this.pos + len;
      const end = this.end;
      this.end = stop;
      while (this.pos < stop) one();
      this.end = end;
      return;
    }
    if (wire !== scalarWire) throw new ProtoError(`wire type ${wire} where ${scalarWire} was expected at byte ${this.#tagStart}`);
    one();
  }

  /** Throws unless the field has the wire type its schema gives it. */
  expect(wire: number, wanted: number): void {
    if (wire !== wanted) throw new ProtoError(`wire type ${wire} where ${wanted} was expected at byte ${this.#tagStart}`);
  }

  #need(n: number): void {
    if (this.pos + n > this.end) throw new ProtoError(`truncated: ${n} bytes needed at byte ${this.pos}, ${this.end - this.pos} left`);
  }
}

/**
 * Writes a message as a list of chunks: a nested message is written into its own writer and
 * spliced in behind its length, and large byte fields (tensor data) are referenced, not copied,
 * until `finish()` concatenates everything once.
 */
export class ProtoWriter {
  #chunks: Uint8Array[] = [];
  #length = 0;
  #scratch = new Uint8Array(256);
  #used = 0;
  readonly #view = new DataView(this.#scratch.buffer);

  get length(): number {
    return this.#length + this.#used;
  }

  tag(field: number, wire: number): void {
    this.rawVarint(field * 8 + wire);
  }

  /** A non-negative varint that fits a number. */
  rawVarint(v: number): void {
    this.#room(10);
    let n = v;
    while (n >= 0x80) {
      this.#scratch[this.#used++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    this.#scratch[this.#used++] = n;
  }

  /** Any 64-bit value (number or bigint, signed or not), two's complement as protobuf's int64. */
  rawVarint64(v: number | bigint): void {
    if (typeof v === "number" && v >= 0 && Number.isSafeInteger(v)) {
      this.rawVarint(v);
      return;
    }
    if (typeof v === "number" && !Number.isSafeInteger(v)) throw new ProtoError(`${v} is not a safe integer`);
    let n = BigInt.asUintN(64, BigInt(v));
    this.#room(10);
    while (n >= 0x80n) {
      this.#scratch[this.#used++] = Number(n & 0x7fn) | 0x80;
      n >>= 7n;
    }
    this.#scratch[this.#used++] = Number(n);
  }

  varintField(field: number, v: number | bigint): void {
    this.tag(field, WIRE_VARINT);
    this.rawVarint64(v);
  }

  floatField(field: number, v: number): void {
    this.tag(field, WIRE_FIXED32);
    this.rawFloat(v);
  }

  rawFloat(v: number): void {
    this.#room(4);
    this.#view.setFloat32(this.#used, v, true);
    this.#used += 4;
  }

  rawDouble(v: number): void {
    this.#room(8);
    this.#view.setFloat64(this.#used, v, true);
    this.#used += 8;
  }

  bytesField(field: number, bytes: Uint8Array): void {
    this.tag(field, WIRE_BYTES);
    this.rawVarint(bytes.length);
    this.raw(bytes);
  }

  stringField(field: number, s: string): void {
    this.bytesField(field, TEXT_ENCODER.encode(s));
  }

  /** A nested message, written by `body` into its own writer. */
  messageField(field: number, body: (w: ProtoWriter) => void): void {
    const inner = new ProtoWriter();
    body(inner);
    this.tag(field, WIRE_BYTES);
    this.rawVarint(inner.length);
    inner.#flush();
    for (const c of inner.#chunks) this.raw(c);
  }

  /** A packed repeated scalar (length, then the values back to back). */
  packedField(field: number, count: number, body: (w: ProtoWriter) => void): void {
    if (count === 0) return;
    this.messageField(field, body);
  }

  /** Bytes as they are; large ones are kept by reference. */
  raw(bytes: Uint8Array): void {
    if (bytes.length <= 64) {
      this.#room(bytes.length);
      this.#scratch.set(bytes, this.#used);
      this.#used += bytes.length;
      return;
    }
    this.#flush();
    this.#chunks.push(bytes);
    this.#length += bytes.length;
  }

  finish(): Uint8Array {
    this.#flush();
    if (this.#chunks.length === 1) return this.#chunks[0]!;
    const out = new Uint8Array(this.#length);
    let at = 0;
    for (const c of this.#chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }

  #room(n: number): void {
    if (this.#used + n <= this.#scratch.length) return;
    this.#flush();
  }

  #flush(): void {
    if (this.#used === 0) return;
    this.#chunks.push(this.#scratch.slice(0, this.#used));
    this.#length += this.#used;
    this.#used = 0;
  }
}

/**
 * Emits a message's unknown fields at their place among the known ones (by field number), so a
 * message written in field order, as protobuf's own serializers do, comes back byte for byte.
 */
export class UnknownCursor {
  readonly #w: ProtoWriter;
  readonly #fields: readonly UnknownField[];
  #next = 0;

  constructor(w: ProtoWriter, fields: readonly UnknownField[] | undefined) {
    this.#w = w;
    // Stable sort: a field repeated keeps its order.
    this.#fields = [...(fields ?? [])].sort((a, b) => a.field - b.field);
  }

  /** Writes every unknown field numbered below `field`. */
  before(field: number): void {
    while (this.#next < this.#fields.length && this.#fields[this.#next]!.field < field) this.#w.raw(this.#fields[this.#next++]!.bytes);
  }

  rest(): void {
    this.before(Number.MAX_SAFE_INTEGER);
  }
}
