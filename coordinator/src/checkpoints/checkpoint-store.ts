/**
 * Checkpoint folders on disk: writing a manifest (atomically, then `latest.json` pointing
 * at it), keeping only the newest checkpoints, and loading one to resume from with every
 * file checked against its sha256 before anything starts.
 */
import { mkdir, readdir, readFile, rm, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { Code, TrainfleetError } from "@trainfleet/proto";
import { fileSha256, writeAtomically } from "@trainfleet/runtime";
import { checkpointFileVersion, checkpointManifestFileName, latestCheckpointFileName } from "@trainfleet/spec";
import type { CheckpointManifest } from "./checkpoint-manifest.js";
import { latestJson, manifestJson, parseLatest, parseManifest } from "./checkpoint-manifest.js";

/** A checkpoint found and verified, ready to resume from. */
export interface LoadedCheckpoint {
  /** The manifest's absolute path. */
  path: string;
  manifest: CheckpointManifest;
  /** The shards' files, absolute, by shard index. */
  files: string[];
}

/** Writes `checkpoint-<version>.json`, points `latest.json` at it, and deletes all but the newest `keep`; returns its path. */
export async function writeCheckpoint(folder: string, manifest: CheckpointManifest, keep = 2): Promise<string> {
  await mkdir(folder, { recursive: true });
  const name = checkpointManifestFileName(manifest.version);
  const path = join(folder, name);
  const encoder = new TextEncoder();
  await writeAtomically(path, encoder.encode(manifestJson(manifest)));
  await writeAtomically(join(folder, latestCheckpointFileName), encoder.encode(latestJson(manifest.version, name)));
  await pruneCheckpoints(folder, manifest.version, keep);
  return path;
}

/**
 * Keeps the newest `keep` manifests up to `newest` and deletes every checkpoint file (the
 * shards' and the manifests) older than the oldest of them. Files of later versions (a
 * checkpoint in progress, or the abandoned future of a job resumed from an older
 * checkpoint) are left alone.
 */
export async function pruneCheckpoints(folder: string, newest: number, keep: number): Promise<void> {
  const names = await readdir(folder);
  const manifests = names
    .filter((name) => name.startsWith("checkpoint-"))
    .map(checkpointFileVersion)
    .filter((version): version is number => version !== undefined && version <= newest)
    .sort((a, b) => b - a);
  const oldestKept = manifests[Math.min(keep, manifests.length) - 1];
  if (oldestKept === undefined) return;
  const old = names.filter((name) => {
    const version = checkpointFileVersion(name);
    return version !== undefined && version < oldestKept;
  });
  await Promise.all(old.map((name) => rm(join(folder, name), { force: true })));
}

/**
 * The checkpoint at `location`: a manifest, or a checkpoint folder (its latest.json).
 * Every shard file must exist and match its sha256; errors name the file and what is wrong.
 */
export async function loadCheckpoint(location: string): Promise<LoadedCheckpoint> {
  const where = resolve(location);
  const info = await stat(where).catch(() => undefined);
  if (info === undefined) throw new TrainfleetError(Code.NOT_FOUND, `${where}: no such checkpoint manifest or folder`);
  let path = where;
  // A folder, or its latest.json: the manifest latest.json names.
  const folder = info.isDirectory() ? where : basename(where) === latestCheckpointFileName ? dirname(where) : undefined;
  if (folder !== undefined) {
    const latestPath = join(folder, latestCheckpointFileName);
    const text = await readFile(latestPath, "utf8").catch(() => undefined);
    if (text === undefined)
      throw new TrainfleetError(
        Code.NOT_FOUND,
        `${folder} holds no complete checkpoint (no ${latestCheckpointFileName}); the job was stopped before its first checkpoint, so start it afresh`,
      );
    path = resolve(folder, parseLatest(text, latestPath).manifest);
  }
  const text = await readFile(path, "utf8").catch((error: unknown) => {
    throw new TrainfleetError(Code.NOT_FOUND, `checkpoint manifest ${path}: cannot read it: ${TrainfleetError.from(error).message}`);
  });
  const manifest = parseManifest(text, path);
  const files = manifest.shards.map((shard) => resolve(dirname(path), shard.file));
  for (const [index, shard] of manifest.shards.entries()) {
    const file = files[index]!;
    const actual = await fileSha256(file).catch((error: unknown) => {
      throw new TrainfleetError(
        Code.NOT_FOUND,
        `checkpoint file ${file} (shard ${index} of ${path}): cannot read it: ${TrainfleetError.from(error).message}`,
      );
    });
    if (actual.sha256 !== shard.sha256 || actual.bytes !== shard.bytes) {
      throw new TrainfleetError(
        Code.DATA_LOSS,
        `checkpoint file ${file} (shard ${index} of ${path}): sha256 mismatch: the file's is ${actual.sha256} (${actual.bytes} bytes), the manifest's ${shard.sha256} (${shard.bytes} bytes); the file is corrupt or was changed, so resume from another checkpoint`,
      );
    }
  }
  return { path, manifest, files };
}
