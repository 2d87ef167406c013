/**
 * Tensor payloads on the wire: little-endian float32 in `bytes` fields. On little-endian
 * hosts (every platform Node ships for) encoding is a zero-copy view; decoding copies
 * into the caller's buffer, which also fixes any misalignment of the received bytes.
 */
import { Code, TrainfleetError } from "@trainfleet/proto";

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new TrainfleetError(Code.UNIMPLEMENTED, "trainfleet needs a little-endian host");
}

export function float32Bytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** Copies little-endian float32 `bytes` into `target` starting at element `at`. */
export function decodeFloat32Into(bytes: Uint8Array, target: Float32Array, at: number): void {
  new Uint8Array(target.buffer, target.byteOffset + at * 4, bytes.byteLength).set(bytes);
}
