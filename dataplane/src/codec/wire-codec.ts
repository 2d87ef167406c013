/**
 * How float32 values travel in a given WireDtype: bytes per value, and encoding into and
 * decoding out of a 16-bit staging buffer. float32 needs neither (it travels as is).
 */
import { invalidField, WireDtype } from "@trainfleet/proto";
import { decodeBfloat16, decodeFloat16, encodeBfloat16, encodeFloat16 } from "./half-precision.js";

export interface WireCodec {
  bytesPerValue: 2 | 4;
  /** values[from, to) -> out[0, to - from). */
  encode(values: Float32Array, from: number, to: number, out: Uint16Array): void;
  /** input -> out[at, at + input.length). */
  decode(input: Uint16Array, out: Float32Array, at: number): void;
}

const float32: WireCodec = {
  bytesPerValue: 4,
  encode() {
    throw new Error("float32 travels as is");
  },
  decode() {
    throw new Error("float32 travels as is");
  },
};

export function wireCodec(dtype: number): WireCodec {
  switch (dtype) {
    case 0:
    case WireDtype.FLOAT32:
      return float32;
    case WireDtype.BFLOAT16:
      return { bytesPerValue: 2, encode: encodeBfloat16, decode: decodeBfloat16 };
    case WireDtype.FLOAT16:
      return { bytesPerValue: 2, encode: encodeFloat16, decode: decodeFloat16 };
    default:
      throw invalidField("dtype", `${dtype} is not a wire dtype: use 1 (float32), 2 (bfloat16) or 3 (float16)`);
  }
}
