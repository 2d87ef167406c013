/**
 * A read of [offset, offset + length) assembled from as many replies as the server needs:
 * a server may send less than asked (it caps its replies), so the reader asks again for the
 * rest, until it has all of it or the file ends.
 */

/** One reply: its bytes (from the asked start), and whether they reach the end of the file. */
export interface RangeReply {
  readonly bytes: Uint8Array;
  readonly atEnd: boolean;
}

export async function readRanges(
  offset: number,
  length: number,
  fetchRange: (start: number, length: number) => Promise<RangeReply>,
): Promise<Uint8Array> {
  if (length === 0) return new Uint8Array(0);
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const reply = await fetchRange(offset + done, length - done);
    out.set(reply.bytes.subarray(0, length - done), done);
    done += Math.min(reply.bytes.length, length - done);
    if (reply.atEnd || reply.bytes.length === 0) break;
  }
  return done === length ? out : out.subarray(0, done);
}

/** Chunks joined into one array (a plain Uint8Array, not a Buffer, so callers compare like with like). */
export function concatBytes(chunks: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
