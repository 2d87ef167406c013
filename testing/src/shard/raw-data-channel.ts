/**
 * A deliberately low-level client of a shard's TCP data channel that sends whatever
 * frames a test builds (including malformed ones) and hands back each reply frame as it
 * arrives; in plaintext, or over TLS with whatever options a test gives (no certificate,
 * another job's, another role's). A connection that ends rejects the reply still awaited.
 */

import { once } from "node:events";
import type { Socket } from "node:net";
import { connect } from "node:net";
import type { ConnectionOptions } from "node:tls";
import { connect as connectTls } from "node:tls";
import type { FrameHeader } from "@trainfleet/dataplane";
import { errorFromFrame, FrameParser, FrameType, frame } from "@trainfleet/dataplane";
import type { PushRequest } from "@trainfleet/proto";
import { maxChunkBytes } from "@trainfleet/proto";

/** A push chunk as the gRPC message has it, plus the WireDtype of `data` (float32 when absent). */
export type RawChunk = Pick<PushRequest, "jobId" | "generation" | "step" | "rank" | "offset" | "data"> & { dtype?: number };

export interface ReplyFrame {
  header: FrameHeader;
  payload: Uint8Array;
}

export class RawConnection {
  readonly #socket: Socket;
  readonly #replies: ReplyFrame[] = [];
  #wake: (() => void) | undefined;
  /** Why the connection ended (an error, or the shard hung up), once it has. */
  #ended: Error | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    const end = (error: Error) => {
      this.#ended ??= error;
      this.#wake?.();
    };
    socket.on("error", end);
    socket.on("close", () => end(new Error("the shard closed the data channel connection")));
    const parser = new FrameParser(
      {
        payloadTarget: (header) => new Uint8Array(header.payloadBytes),
        frame: (header, payload) => {
          this.#replies.push({ header, payload });
          this.#wake?.();
        },
      },
      maxChunkBytes,
    );
    socket.on("data", (data: Buffer) => parser.feed(data));
  }

  /**
   * Connects and says HELLO for `jobId`; rejects with the shard's error if it refuses, or
   * with the socket's if the connection fails. With `tls`, over TLS with those options.
   */
  static async open(address: string, jobId: string, tls?: ConnectionOptions): Promise<RawConnection> {
    const [host, port] = [address.slice(0, address.lastIndexOf(":")), Number(address.slice(address.lastIndexOf(":") + 1))];
    const socket = tls === undefined ? connect({ host, port }) : connectTls({ host, port, ...tls });
    const connection = new RawConnection(socket);
    try {
      await once(socket, tls === undefined ? "connect" : "secureConnect");
    } catch (error) {
      socket.destroy();
      throw error;
    }
    const hello = Buffer.from(jobId);
    socket.write(frame({ type: FrameType.HELLO, payloadBytes: hello.byteLength }));
    socket.write(hello);
    const reply = await connection.next();
    if (reply.header.type === FrameType.ERROR) {
      socket.destroy();
      throw errorFromFrame(reply.header, reply.payload);
    }
    return connection;
  }

  /** PUSH_CHUNK frames for `chunks`, then PUSH_END unless `end` is false. */
  push(chunks: readonly RawChunk[], end = true): void {
    for (const chunk of chunks) {
      this.#socket.write(
        frame({
          type: FrameType.PUSH_CHUNK,
          dtype: chunk.dtype ?? 0,
          generation: chunk.generation,
          step: chunk.step,
          rank: chunk.rank,
          offset: Number(chunk.offset),
          payloadBytes: chunk.data.byteLength,
        }),
      );
      this.#socket.write(chunk.data);
    }
    const last = chunks[chunks.length - 1];
    if (end)
      this.#socket.write(
        frame({
          type: FrameType.PUSH_END,
          ...(last === undefined ? {} : { generation: last.generation, step: last.step, rank: last.rank }),
        }),
      );
  }

  pull(minVersion: number, dtype = 0): void {
    this.#socket.write(frame({ type: FrameType.PULL, dtype, step: minVersion }));
  }

  /** The next reply frame, once it has arrived; rejects once the connection has ended without one. */
  async next(): Promise<ReplyFrame> {
    while (this.#replies.length === 0) {
      if (this.#ended !== undefined) throw this.#ended;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
    return this.#replies.shift()!;
  }

  /** Reply frames that have arrived and not been taken yet. */
  get arrived(): number {
    return this.#replies.length;
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** Sends HELLO for the first chunk's job, the chunks and PUSH_END; resolves with the ack or rejects with the error. */
export async function rawTcpPush(
  address: string,
  chunks: RawChunk[],
  tls?: ConnectionOptions,
): Promise<{ chunksAccepted: number; chunksDuplicate: number; version: number }> {
  const connection = await RawConnection.open(address, chunks[0]?.jobId ?? "", tls);
  try {
    connection.push(chunks);
    const reply = await connection.next();
    if (reply.header.type === FrameType.ERROR) throw errorFromFrame(reply.header, reply.payload);
    const view = new DataView(reply.payload.buffer, reply.payload.byteOffset, 8);
    return { chunksAccepted: view.getUint32(0, true), chunksDuplicate: view.getUint32(4, true), version: reply.header.step };
  } finally {
    connection.close();
  }
}
