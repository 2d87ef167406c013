/** Building the frames that carry a reply or an error. */
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { FrameHeader } from "./frames.js";
import { encodeHeader, FrameType, headerBytes } from "./frames.js";

export function frame(header: Partial<FrameHeader> & { type: FrameType }): Buffer {
  return Buffer.from(encodeHeader(header).buffer);
}

export function errorFrame(reason: unknown): Buffer {
  const error = TrainfleetError.from(reason, Code.INTERNAL);
  const payload = Buffer.from(JSON.stringify({ field: error.field, message: error.message }));
  const out = Buffer.allocUnsafe(headerBytes + payload.byteLength);
  encodeHeader({ type: FrameType.ERROR, code: error.code, payloadBytes: payload.byteLength }, out);
  payload.copy(out, headerBytes);
  return out;
}

export function errorFromFrame(header: FrameHeader, payload: Uint8Array): TrainfleetError {
  const { field, message } = JSON.parse(Buffer.from(payload).toString("utf8")) as { field?: string; message: string };
  return new TrainfleetError(header.code as Code, message, field === undefined ? {} : { field });
}
