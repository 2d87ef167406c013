/**
 * Byte ranges as readers ask for them and as HTTP and S3 answer them (`Content-Range`).
 * A remote answer is checked against the question before its bytes are used: a proxy or
 * server that answers a different range would otherwise hand a worker the wrong records.
 */
import { Code, TrainfleetError } from "@trainfleet/proto";

/** Rejects an offset or length that is not a non-negative safe integer, naming the file. */
export function checkReadArguments(uri: string, offset: number, length: number): void {
  for (const [name, value] of [
    ["offset", offset],
    ["length", length],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new TrainfleetError(Code.INVALID_ARGUMENT, `${uri}: read ${name} ${value} is not a non-negative integer`, { field: name });
    }
  }
}

/** `bytes=start-end` for the bytes [start, start + length). */
export function rangeHeader(start: number, length: number): string {
  return `bytes=${start}-${start + length - 1}`;
}

/** A parsed `Content-Range`: the bytes [start, end] (inclusive) sent, of `total` (undefined when the server gave `*`). */
export interface ContentRange {
  readonly start: number;
  readonly end: number;
  readonly total: number | undefined;
}

/** `bytes a-b/total` or `bytes a-b/*`; undefined for anything else. */
export function parseContentRange(header: string | null | undefined): ContentRange | undefined {
  const match = /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(header ?? "");
  if (match === null) return undefined;
  const [start, end] = [Number(match[1]), Number(match[2])];
  const total = match[3] === "*" ? undefined : Number(match[3]);
  if (end < start || (total !== undefined && end >= total)) return undefined;
  return { start, end, total };
}

/** The total of an unsatisfiable-range answer, `bytes *\/total`; undefined if absent or malformed. */
export function parseUnsatisfiedRange(header: string | null | undefined): number | undefined {
  const match = /^\s*bytes\s+\*\/(\d+)\s*$/i.exec(header ?? "");
  return match === null ? undefined : Number(match[1]);
}

/**
 * Checks that `answer` (the Content-Range of a reply to a request for [start, start + length))
 * starts where asked and ends within the request; returns it. A shorter answer is allowed
 * (the file ends, or the server caps its replies): the reader asks again for the rest.
 */
export function checkAnswerRange(uri: string, header: string | null | undefined, start: number, length: number): ContentRange {
  const range = parseContentRange(header);
  if (range === undefined || range.start !== start || range.end > start + length - 1) {
    throw new TrainfleetError(
      Code.FAILED_PRECONDITION,
      `${uri}: asked for ${rangeHeader(start, length)}, the server answered Content-Range "${header ?? ""}". ` +
        "Fix: serve the file from a server (or through a proxy) that honours HTTP range requests",
    );
  }
  return range;
}

/** True once `range` reaches the end of the file, so no further bytes exist. */
export function reachesEnd(range: ContentRange): boolean {
  return range.total !== undefined && range.end + 1 >= range.total;
}
