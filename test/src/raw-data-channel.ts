/**
 * A deliberately low-level client of a shard's TCP data channel that sends whatever
 * frames a test builds (including malformed ones) and returns the shard's one reply.
 */
import { connect } from "node:net";
import { once } from "node:events";
import { FrameParser, FrameType, errorFromFrame, frame, maxChunkBytes } from "@trainfleet/proto";
import type { FrameHeader, PushRequest } from "@trainfleet/proto";

/** A push chunk as the gRPC message has it, plus the WireDtype of `data` (float32 when absent). */
export type RawChunk = Pick<PushRequest, "jobId" | "generation" | "step" | "rank" | "offset" | "data"> & { dtype?: number };

/** Sends HELLO for the first chunk's job, the chunks and PUSH_END; resolves with the ack or rejects with the error. */
export async function rawTcpPush(address: string, chunks: RawChunk[]): Promise<{ chunksAccepted: number; chunksDuplicate: number; version: number }> {
  const [host, port] = [address.slice(0, address.lastIndexOf(":")), Number(address.slice(address.lastIndexOf(":") + 1))];
  const socket = connect({ host, port });
  await once(socket, "connect");
  const replies: Array<{ header: FrameHeader; payload: Uint8Array }> = [];
  let wake: (() => void) | undefined;
  const parser = new FrameParser(
    {
      payloadTarget: (header) => new Uint8Array(header.payloadBytes),
      frame: (header, payload) => {
        replies.push({ header, payload });
        wake?.();
      },
    },
    maxChunkBytes,
  );
  socket.on("data", (data: Buffer) => parser.feed(data));
  const next = async () => {
    while (replies.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    return replies.shift()!;
  };
  try {
    const jobId = Buffer.from(chunks[0]?.jobId ?? "");
    socket.write(frame({ type: FrameType.HELLO, payloadBytes: jobId.byteLength }));
    socket.write(jobId);
    const hello = await next();
    if (hello.header.type === FrameType.ERROR) throw errorFromFrame(hello.header, hello.payload);
    for (const chunk of chunks) {
      socket.write(frame({ type: FrameType.PUSH_CHUNK, dtype: chunk.dtype ?? 0, generation: chunk.generation, step: chunk.step, rank: chunk.rank, offset: Number(chunk.offset), payloadBytes: chunk.data.byteLength }));
      socket.write(chunk.data);
    }
    const last = chunks[chunks.length - 1];
    socket.write(frame({ type: FrameType.PUSH_END, ...(last === undefined ? {} : { generation: last.generation, step: last.step, rank: last.rank }) }));
    const reply = await next();
    if (reply.header.type === FrameType.ERROR) throw errorFromFrame(reply.header, reply.payload);
    const view = new DataView(reply.payload.buffer, reply.payload.byteOffset, 8);
    return { chunksAccepted: view.getUint32(0, true), chunksDuplicate: view.getUint32(4, true), version: reply.header.step };
  } finally {
    socket.destroy();
  }
}
