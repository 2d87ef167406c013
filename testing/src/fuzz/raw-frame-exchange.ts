/**
 * Sends a TCP data channel whatever bytes a fuzz test built, then ends the connection and
 * collects every frame the shard answered with until it has closed its side too. The shard
 * reads a connection's bytes in order and acts on each frame as it completes, so once the
 * connection is closed everything the bytes could do to the shard is done.
 */
import { connect } from "node:net";
import type { FrameHeader } from "@trainfleet/dataplane";
import { FrameParser } from "@trainfleet/dataplane";
import { maxChunkBytes } from "@trainfleet/proto";

export interface ReplyFrames {
  frames: { header: FrameHeader; payload: Uint8Array }[];
  /** What made the replies unreadable, if they were: a shard must only send well-formed frames. */
  unreadable: unknown;
}

/** Writes `pieces` one write each, ends the connection, and resolves once the shard has closed it. */
export async function exchangeRawFrames(address: string, pieces: readonly Uint8Array[]): Promise<ReplyFrames> {
  const colon = address.lastIndexOf(":");
  const socket = connect({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)) });
  const result: ReplyFrames = { frames: [], unreadable: undefined };
  const parser = new FrameParser(
    { payloadTarget: (header) => new Uint8Array(header.payloadBytes), frame: (header, payload) => result.frames.push({ header, payload }) },
    maxChunkBytes,
  );
  socket.on("data", (data: Buffer) => {
    if (result.unreadable !== undefined) return;
    try {
      parser.feed(data);
    } catch (error) {
      result.unreadable = error;
    }
  });
  // A shard that closes on bad bytes resets the connection under the writes that follow:
  // that is an answer too (events.once would reject on it, so plain listeners here).
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await Promise.race([new Promise<void>((resolve) => socket.once("connect", () => resolve())), closed]);
  for (const piece of pieces) socket.write(piece);
  socket.end();
  await closed;
  return result;
}
