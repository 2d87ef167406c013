/**
 * An incremental frame parser that lets the receiver choose where each payload lands. It
 * works both ways a socket can deliver bytes: `feed` for 'data' events (one copy into the
 * chosen place), and `nextBuffer`/`advance` for a socket's `onread` option, where the
 * kernel writes straight into the chosen place and nothing is copied.
 */
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { FrameHeader } from "./frames.js";
import { decodeHeader, headerBytes } from "./frames.js";

export interface FrameHandler {
  /**
   * Where the payload of `header` goes: exactly header.payloadBytes long. Called for every
   * frame, empty ones too. `skip`: the payload is read and dropped through a small shared
   * buffer, so a refused frame costs no memory of its size; `frame` then gets an empty payload.
   */
  payloadTarget(header: FrameHeader): Uint8Array | typeof skip;
  /** The frame is complete (its payload is in the target, or was skipped). */
  frame(header: FrameHeader, payload: Uint8Array): void;
}

/** What payloadTarget returns for a payload to read and drop. */
export const skip = Symbol("skip");

/** Where skipped payloads are read, a piece at a time: shared, since nobody reads it. */
const skipBuffer = new Uint8Array(64 * 1024);

export class FrameParser {
  readonly #handler: FrameHandler;
  readonly #maxPayloadBytes: number;
  readonly #header = new Uint8Array(headerBytes);
  #current: FrameHeader | undefined;
  #target: Uint8Array = this.#header;
  #filled = 0;
  /** Bytes of a skipped payload still to read; 0 when not skipping. */
  #skipping = 0;

  constructor(handler: FrameHandler, maxPayloadBytes: number) {
    this.#handler = handler;
    this.#maxPayloadBytes = maxPayloadBytes;
  }

  /** The rest of the buffer being filled now: a header, or the current payload's target. */
  nextBuffer(): Uint8Array {
    if (this.#skipping > 0) return skipBuffer.subarray(0, Math.min(this.#skipping, skipBuffer.byteLength));
    return this.#target.subarray(this.#filled);
  }

  /**
   * A socket's `onread` option that has each read land where this parser wants it (the
   * kernel's, in plaintext, or the decrypted bytes, over TLS); a parse error goes to `onError`.
   */
  socketReads(onError: (error: unknown) => void): { buffer: () => Uint8Array; callback: (count: number) => boolean } {
    return {
      buffer: () => this.nextBuffer(),
      callback: (count) => {
        try {
          this.advance(count);
        } catch (error) {
          onError(error);
        }
        return true;
      },
    };
  }

  /** `count` bytes were written at the start of nextBuffer(). */
  advance(count: number): void {
    if (this.#skipping > 0) {
      this.#skipping -= count;
      if (this.#skipping === 0) this.#complete(new Uint8Array(0));
      return;
    }
    this.#filled += count;
    if (this.#filled < this.#target.byteLength) return;
    if (this.#current === undefined) {
      const header = decodeHeader(this.#header);
      if (header.payloadBytes > this.#maxPayloadBytes) {
        throw new TrainfleetError(
          Code.RESOURCE_EXHAUSTED,
          `a frame of ${header.payloadBytes} bytes is larger than the ${this.#maxPayloadBytes} allowed; lower spec.parameterServers.chunkBytes`,
        );
      }
      this.#current = header;
      this.#filled = 0;
      // An empty payload's header goes through payloadTarget too: that is where a receiver
      // checks a header, and a shard must refuse an empty chunk as it refuses a short one.
      const target = this.#handler.payloadTarget(header);
      if (target === skip) {
        if (header.payloadBytes === 0) return this.#complete(new Uint8Array(0));
        this.#skipping = header.payloadBytes;
        return;
      }
      if (target.byteLength !== header.payloadBytes)
        throw new TrainfleetError(Code.INTERNAL, "payloadTarget must be exactly payloadBytes long");
      if (header.payloadBytes === 0) return this.#complete(target);
      this.#target = target;
      return;
    }
    this.#complete(this.#target);
  }

  /** Parses bytes that arrived in a 'data' event. */
  feed(chunk: Uint8Array): void {
    let position = 0;
    while (position < chunk.byteLength) {
      const target = this.nextBuffer();
      const count = Math.min(target.byteLength, chunk.byteLength - position);
      target.set(chunk.subarray(position, position + count));
      position += count;
      this.advance(count);
    }
  }

  #complete(payload: Uint8Array): void {
    const header = this.#current!;
    this.#current = undefined;
    this.#target = this.#header;
    this.#filled = 0;
    this.#handler.frame(header, payload);
  }
}
