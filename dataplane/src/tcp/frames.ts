/**
 * The TCP data channel's frames: a 32-byte little-endian header, then `payloadBytes` of
 * payload. Every request gets exactly one reply (a pull's reply is its PARAMS frames and
 * PULL_END) and replies come in request order, so requests may be pipelined on a
 * connection without request ids.
 *
 *   0 u8 type   1 u8 dtype (a WireDtype: 1 float32, 2 bfloat16, 3 float16)   2 u16 reserved   4 u32 rank
 *   8 u32 generation   12 u32 step (push) / version (params, ack) / min version (pull)
 *   16 f64 element offset   24 u32 payload bytes   28 u32 error code
 */
export const headerBytes = 32;

export const FrameType = {
  /** client -> shard: payload is the job id (UTF-8); reply HELLO_OK or ERROR. */
  HELLO: 1,
  HELLO_OK: 2,
  /** client -> shard: one gradient chunk keyed by `offset`. */
  PUSH_CHUNK: 3,
  /** client -> shard: the push is complete; reply PUSH_ACK (payload: u32 accepted, u32 duplicate) or ERROR. */
  PUSH_END: 4,
  PUSH_ACK: 5,
  /**
   * client -> shard: parameters of version >= `step`; reply PARAMS frames (each chunk as
   * soon as it is ready, so possibly before the step that makes the version is whole)
   * then PULL_END, or ERROR. A pull may be sent before the push it waits for: if that
   * push is rejected, the pull ends with ERROR (ABORTED) and the push's ERROR follows.
   */
  PULL: 6,
  PARAMS: 7,
  PULL_END: 8,
  /** shard -> client: `code` is a gRPC code; payload is JSON {field?, message}. */
  ERROR: 9,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export interface FrameHeader {
  type: FrameType;
  /** For PUSH_CHUNK, PULL and PARAMS: the WireDtype of the values (0 counts as float32). */
  dtype: number;
  rank: number;
  generation: number;
  /** The push's step, the version of parameters or an ack, or a pull's minimum version. */
  step: number;
  offset: number;
  payloadBytes: number;
  code: number;
}

export function encodeHeader(header: Partial<FrameHeader> & { type: FrameType }, target = new Uint8Array(headerBytes)): Uint8Array {
  const view = new DataView(target.buffer, target.byteOffset, headerBytes);
  view.setUint8(0, header.type);
  view.setUint8(1, header.dtype ?? 0);
  view.setUint16(2, 0, true);
  view.setUint32(4, header.rank ?? 0, true);
  view.setUint32(8, header.generation ?? 0, true);
  view.setUint32(12, header.step ?? 0, true);
  view.setFloat64(16, header.offset ?? 0, true);
  view.setUint32(24, header.payloadBytes ?? 0, true);
  view.setUint32(28, header.code ?? 0, true);
  return target;
}

export function decodeHeader(bytes: Uint8Array): FrameHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset, headerBytes);
  return {
    type: view.getUint8(0) as FrameType,
    dtype: view.getUint8(1),
    rank: view.getUint32(4, true),
    generation: view.getUint32(8, true),
    step: view.getUint32(12, true),
    offset: view.getFloat64(16, true),
    payloadBytes: view.getUint32(24, true),
    code: view.getUint32(28, true),
  };
}
