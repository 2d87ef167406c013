/**
 * The file a shard writes for its slice of a checkpoint, `shard-<index>-v<version>.ckpt`:
 * a small header, then little-endian float32 arrays. Pure encoding and decoding; the
 * files themselves are written and read in checkpoint-files.ts.
 *
 *   offset  size  field
 *   0       8     magic "TFSHCKPT"
 *   8       4     format version (1)
 *   12      4     header length H in bytes (a multiple of 8; the data starts there)
 *   16      4     shard index
 *   20      4     parameter version (steps applied)
 *   24      8     range begin (element offset into the flattened parameters)
 *   32      8     range end
 *   40      4     optimizer: 1 sgd, 2 sgd with momentum, 3 adam
 *   44      4     optimizer state arrays S (0, 1 or 2)
 *   48      8     elements per array N (= end - begin)
 *   56      4     job id length L in bytes
 *   60      L     job id, UTF-8; zero padding up to H
 *   H       4N    parameters at the version
 *   H+4N    4N*S  optimizer state: sgd with momentum the velocity; adam m, then v
 *
 * All integers little-endian. The checksum (sha256 of the whole file) is kept outside,
 * in the coordinator's manifest, and handed back to the shard that restores the file.
 */
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { Range } from "@trainfleet/spec";
import type { OptimizerKind } from "./optimizer.js";
import { optimizerStateArrays } from "./optimizer.js";
import type { ShardState } from "./shard-snapshot.js";

export const checkpointMagic = "TFSHCKPT";
export const checkpointFormatVersion = 1;
const fixedHeaderBytes = 60;

const optimizerCodes: Record<OptimizerKind, number> = { sgd: 1, "sgd-momentum": 2, adam: 3 };

export interface CheckpointHeader {
  formatVersion: number;
  shardIndex: number;
  jobId: string;
  version: number;
  range: Range;
  optimizer: OptimizerKind;
  stateArrays: number;
  elements: number;
}

/** The file's bytes, as parts to write one after the other (the arrays are not copied). */
export function encodeShardCheckpoint(snapshot: ShardState, shardIndex: number): Uint8Array[] {
  const jobId = new TextEncoder().encode(snapshot.jobId);
  const headerBytes = Math.ceil((fixedHeaderBytes + jobId.byteLength) / 8) * 8;
  const header = new Uint8Array(headerBytes);
  const view = new DataView(header.buffer);
  header.set(new TextEncoder().encode(checkpointMagic), 0);
  view.setUint32(8, checkpointFormatVersion, true);
  view.setUint32(12, headerBytes, true);
  view.setUint32(16, shardIndex, true);
  view.setUint32(20, snapshot.version, true);
  view.setBigUint64(24, BigInt(snapshot.range.begin), true);
  view.setBigUint64(32, BigInt(snapshot.range.end), true);
  view.setUint32(40, optimizerCodes[snapshot.optimizer], true);
  view.setUint32(44, snapshot.state.length, true);
  view.setBigUint64(48, BigInt(snapshot.parameters.length), true);
  view.setUint32(56, jobId.byteLength, true);
  header.set(jobId, fixedHeaderBytes);
  const arrays = [snapshot.parameters, ...snapshot.state].map(
    (values) => new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
  );
  return [header, ...arrays];
}

/** Reads a whole file's bytes back; `file` names it in errors (DATA_LOSS: the file is not a checkpoint, or cut short). */
export function decodeShardCheckpoint(bytes: Uint8Array, file: string): { header: CheckpointHeader; snapshot: ShardState } {
  const corrupt = (problem: string) => new TrainfleetError(Code.DATA_LOSS, `checkpoint file ${file}: ${problem}`);
  if (bytes.byteLength < fixedHeaderBytes)
    throw corrupt(`${bytes.byteLength} bytes, too short for a checkpoint header (${fixedHeaderBytes})`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = new TextDecoder().decode(bytes.subarray(0, 8));
  if (magic !== checkpointMagic)
    throw corrupt(`not a trainfleet shard checkpoint (magic ${JSON.stringify(magic)}, expected "${checkpointMagic}")`);
  const formatVersion = view.getUint32(8, true);
  if (formatVersion !== checkpointFormatVersion)
    throw corrupt(`format version ${formatVersion}; this trainfleet reads version ${checkpointFormatVersion}`);
  const headerBytes = view.getUint32(12, true);
  const jobIdBytes = view.getUint32(56, true);
  if (headerBytes % 8 !== 0 || headerBytes < fixedHeaderBytes + jobIdBytes || headerBytes > bytes.byteLength)
    throw corrupt(`header length ${headerBytes} is impossible`);
  const code = view.getUint32(40, true);
  const optimizer = (Object.keys(optimizerCodes) as OptimizerKind[]).find((kind) => optimizerCodes[kind] === code);
  if (optimizer === undefined) throw corrupt(`unknown optimizer code ${code}`);
  const header: CheckpointHeader = {
    formatVersion,
    shardIndex: view.getUint32(16, true),
    version: view.getUint32(20, true),
    range: { begin: Number(view.getBigUint64(24, true)), end: Number(view.getBigUint64(32, true)) },
    optimizer,
    stateArrays: view.getUint32(44, true),
    elements: Number(view.getBigUint64(48, true)),
    jobId: new TextDecoder().decode(bytes.subarray(fixedHeaderBytes, fixedHeaderBytes + jobIdBytes)),
  };
  if (header.elements !== header.range.end - header.range.begin)
    throw corrupt(`${header.elements} elements for range [${header.range.begin}, ${header.range.end})`);
  if (header.stateArrays !== optimizerStateArrays[optimizer])
    throw corrupt(`${header.stateArrays} state arrays for optimizer ${optimizer}, which keeps ${optimizerStateArrays[optimizer]}`);
  const expected = headerBytes + (1 + header.stateArrays) * header.elements * 4;
  if (bytes.byteLength !== expected) throw corrupt(`${bytes.byteLength} bytes, the header describes ${expected}`);
  // Copied out, so that the arrays are aligned and do not hold on to the file's buffer.
  const array = (i: number) =>
    new Float32Array(bytes.slice(headerBytes + i * header.elements * 4, headerBytes + (i + 1) * header.elements * 4).buffer);
  const snapshot: ShardState = {
    jobId: header.jobId,
    version: header.version,
    range: header.range,
    optimizer,
    parameters: array(0),
    state: Array.from({ length: header.stateArrays }, (_, i) => array(i + 1)),
  };
  return { header, snapshot };
}

/** What a restoring shard expects of the file: its assignment. */
export interface ExpectedCheckpoint {
  shardIndex: number;
  jobId: string;
  version: number;
  range: Range;
  optimizer: OptimizerKind;
}

/** Throws FAILED_PRECONDITION naming the file and every field that differs from the assignment. */
export function checkShardCheckpoint(header: CheckpointHeader, expected: ExpectedCheckpoint, file: string): void {
  const differences = [
    header.jobId !== expected.jobId && `job id "${header.jobId}" (the assignment: "${expected.jobId}")`,
    header.shardIndex !== expected.shardIndex && `shard ${header.shardIndex} (the assignment: shard ${expected.shardIndex})`,
    header.version !== expected.version && `version ${header.version} (the assignment: ${expected.version})`,
    (header.range.begin !== expected.range.begin || header.range.end !== expected.range.end) &&
      `range [${header.range.begin}, ${header.range.end}) (the assignment: [${expected.range.begin}, ${expected.range.end}))`,
    header.optimizer !== expected.optimizer && `optimizer ${header.optimizer} (the job's: ${expected.optimizer})`,
  ].filter((difference) => difference !== false);
  if (differences.length > 0) {
    throw new TrainfleetError(
      Code.FAILED_PRECONDITION,
      `checkpoint file ${file} does not belong to this shard: it holds ${differences.join(", ")}; resume from the checkpoint of this job and shard layout`,
    );
  }
}
