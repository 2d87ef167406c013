/**
 * A shard's checkpoint files on disk. The writer takes the snapshots the shard emits and
 * writes each to `<folder>/shard-<index>-v<version>.ckpt` (temp file, fsync, rename), one
 * at a time in the order taken, then reports it to the coordinator; training goes on
 * meanwhile. The reader checks a file's sha256 and header before a shard restores it.
 */
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { ShardRestore } from "@trainfleet/proto";
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import { sha256Hex, writeAtomically } from "@trainfleet/runtime";
import { shardCheckpointFileName } from "@trainfleet/spec";
import type { ExpectedCheckpoint } from "./checkpoint-format.js";
import { checkShardCheckpoint, decodeShardCheckpoint, encodeShardCheckpoint } from "./checkpoint-format.js";
import type { ShardSnapshot, ShardState } from "./shard-snapshot.js";

/** A file written, or (error set) one that could not be. */
export interface CheckpointWritten {
  version: number;
  /** The generation the shard reached `version` in. */
  generation: number;
  path: string;
  sha256: string;
  bytes: number;
  error: string;
}

export interface CheckpointWriterOptions {
  folder: string;
  shardIndex: number;
  logger: Logger;
  /** Tells the coordinator; must not throw (log a failure to tell). */
  report(written: CheckpointWritten): Promise<void>;
}

export interface CheckpointWriter {
  /** Queues `snapshot` to be written; returns at once. */
  write(snapshot: ShardSnapshot): void;
  /** Resolves when every queued file is written and reported. */
  flush(): Promise<void>;
}

export function createCheckpointWriter(options: CheckpointWriterOptions): CheckpointWriter {
  const { folder, shardIndex, logger } = options;
  let queue = Promise.resolve();
  const writeOne = async (snapshot: ShardSnapshot): Promise<void> => {
    const path = join(folder, shardCheckpointFileName(shardIndex, snapshot.version));
    const { version, generation } = snapshot;
    let written: CheckpointWritten;
    try {
      const started = performance.now();
      const parts = encodeShardCheckpoint(snapshot, shardIndex);
      await mkdir(folder, { recursive: true });
      await writeAtomically(path, parts);
      written = {
        version,
        generation,
        path,
        sha256: sha256Hex(parts),
        bytes: parts.reduce((sum, part) => sum + part.byteLength, 0),
        error: "",
      };
      logger.info(
        { version: snapshot.version, path, bytes: written.bytes, ms: Math.round(performance.now() - started) },
        "checkpoint slice written",
      );
    } catch (error) {
      const message = `could not write ${path}: ${TrainfleetError.from(error).message}`;
      logger.error({ version: snapshot.version, path }, message);
      written = { version, generation, path, sha256: "", bytes: 0, error: message };
    }
    await options.report(written);
  };
  return {
    write(snapshot) {
      queue = queue.then(() => writeOne(snapshot));
    },
    flush: () => queue,
  };
}

/**
 * The snapshot in a checkpoint file, once its sha256 is the manifest's and its header is
 * this shard's: DATA_LOSS for a corrupt file, FAILED_PRECONDITION for another shard's or
 * job's, each naming the file.
 */
export async function readShardCheckpoint(
  restore: Pick<ShardRestore, "path" | "version" | "sha256">,
  expected: Omit<ExpectedCheckpoint, "version">,
): Promise<ShardState> {
  let bytes: Buffer;
  try {
    bytes = await readFile(restore.path);
  } catch (error) {
    throw new TrainfleetError(
      Code.FAILED_PRECONDITION,
      `checkpoint file ${restore.path}: cannot read it: ${TrainfleetError.from(error).message}`,
      { cause: error },
    );
  }
  const sha256 = sha256Hex(bytes);
  if (sha256 !== restore.sha256) {
    throw new TrainfleetError(
      Code.DATA_LOSS,
      `checkpoint file ${restore.path}: sha256 mismatch: the file's is ${sha256}, the manifest's ${restore.sha256}; the file is corrupt or was changed, so resume from another checkpoint`,
    );
  }
  const { header, snapshot } = decodeShardCheckpoint(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), restore.path);
  checkShardCheckpoint(header, { ...expected, version: restore.version }, restore.path);
  return snapshot;
}
