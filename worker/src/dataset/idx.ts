/**
 * Reader for the IDX format of (Fashion-)MNIST: 0x00 0x00, a type byte, a dimension count,
 * then one big-endian uint32 per dimension and the row-major payload. Files are usually
 * gzipped on disk, so gzip input is inflated first, never past a bound (a few KiB of gzip
 * can inflate to gigabytes). Any damage is DATA_LOSS with the fix in the message, because a
 * truncated download or cache is the usual cause.
 */
import { gunzipSync } from "node:zlib";
import { Code, TrainfleetError } from "@trainfleet/proto";

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Only unsigned bytes: the one type (Fashion-)MNIST uses. */
const TYPE_UBYTE = 0x08;

function damaged(source: string, problem: string, cause?: unknown): TrainfleetError {
  return new TrainfleetError(
    Code.DATA_LOSS,
    `${source}: ${problem}. The file is damaged or not an IDX file: re-run \`npm run fetch-data\`, ` +
      `or delete the folder holding it (e.g. ~/.cache/trainfleet/fashion-mnist) and fetch again.`,
    cause === undefined ? {} : { cause },
  );
}

/**
 * The most an IDX file may inflate to: 2 GiB, four times the largest IDX in common use
 * (EMNIST ByClass's training images, 547 MB).
 */
export const maxInflatedIdxBytes = 2 * 1024 ** 3;

function inflate(bytes: Uint8Array, source: string, maxBytes: number): Uint8Array {
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) return bytes;
  try {
    return gunzipSync(bytes, { maxOutputLength: maxBytes });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE")
      throw new TrainfleetError(
        Code.RESOURCE_EXHAUSTED,
        `${source}: inflates to more than ${maxBytes} bytes, the most trainfleet reads from one IDX file: give the data as Parquet or Arrow shards with a dataset.json instead (docs/own-model.md)`,
        { cause: error },
      );
    throw damaged(source, `corrupt gzip data (${(error as Error).message})`, error);
  }
}

/** Parses one IDX file; `source` (usually the path) names the file in errors. */
export function parseIdx(bytes: Uint8Array, source: string, maxBytes = maxInflatedIdxBytes): IdxArray {
  const raw = inflate(bytes, source, maxBytes);
  if (raw.length < 4) throw damaged(source, `only ${raw.length} bytes, shorter than the 4-byte IDX header`);
  if (raw[0] !== 0 || raw[1] !== 0) throw damaged(source, "bad magic number (expected 0x00 0x00)");
  const type = raw[2]!;
  const ndims = raw[3]!;
  if (type !== TYPE_UBYTE) {
    throw damaged(source, `unsupported element type 0x${type.toString(16).padStart(2, "0")} (only 0x08, unsigned byte)`);
  }
  const headerLength = 4 + 4 * ndims;
  if (raw.length < headerLength)
    throw damaged(source, `truncated header: ${ndims} dimensions need ${headerLength} bytes, file has ${raw.length}`);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const dims = Array.from({ length: ndims }, (_, i) => view.getUint32(4 + 4 * i, false));
  const expected = dims.reduce((product, d) => product * d, 1);
  const actual = raw.length - headerLength;
  if (actual !== expected) {
    throw damaged(source, `dimensions ${dims.join("x")} need ${expected} bytes of data, file has ${actual}`);
  }
  return { dims, data: raw.subarray(headerLength) };
}
