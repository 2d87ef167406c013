/**
 * The coordinator's record of one checkpoint, `checkpoint-<version>.json`: what a resumed
 * job needs besides the shards' files. Pure: building the JSON and reading it back with
 * errors that name the manifest and the field. Files are written and read in
 * checkpoint-store.ts.
 *
 *   {
 *     "format": "trainfleet-checkpoint/1",
 *     "jobId": "fashion-mnist",
 *     "version": 120,                  parameter version = steps completed; the next step is 120
 *     "generation": 1,
 *     "worldSize": 2,
 *     "backends": ["cpu", "cpu"],      each rank's compute backend (bitwise resume needs the same)
 *     "ledger": { "step": 120, "epoch": 0, "offset": 15360 },   the sample cursor there
 *     "reason": "periodic",            or "terminated" (the just-in-time one on SIGTERM)
 *     "createdUnixMs": 1764370000000, "createdAt": "2025-11-28T22:46:40.000Z",
 *     "shards": [{ "index": 0, "begin": 0, "end": 101765, "file": "shard-0-v120.ckpt",
 *                  "sha256": "...", "bytes": 1221240 }, ...],     file: relative to the manifest
 *     "spec": { ...the resolved JobSpec, protobuf JSON... }
 *   }
 */

import type { JsonValue } from "@bufbuild/protobuf";
import { fromJson, toJson } from "@bufbuild/protobuf";
import { Code, JobSpecSchema, TrainfleetError } from "@trainfleet/proto";
import type { ResolvedJobSpec } from "@trainfleet/spec";
import { resolveJobSpec } from "@trainfleet/spec";
import type { CursorPosition } from "../steps/sample-cursor.js";

export const manifestFormat = "trainfleet-checkpoint/1";

export type CheckpointReason = "periodic" | "terminated";

export interface ShardFile {
  index: number;
  begin: number;
  end: number;
  /** Relative to the manifest's folder (or absolute). */
  file: string;
  sha256: string;
  bytes: number;
}

export interface CheckpointManifest {
  jobId: string;
  version: number;
  /** The generation and its number of ranks when the checkpoint was taken (any number resumes: the global batch is fixed). */
  generation: number;
  worldSize: number;
  /** Each rank's compute backend: a resume is bitwise exact only on the same ones. */
  backends: string[];
  ledger: CursorPosition;
  reason: CheckpointReason;
  createdUnixMs: number;
  shards: ShardFile[];
  /** Resolved once, here, when the manifest is read: a resumed job trusts it. */
  spec: ResolvedJobSpec;
}

export function manifestJson(manifest: CheckpointManifest): string {
  const { jobId, version, generation, worldSize, backends, ledger, reason, createdUnixMs, shards, spec } = manifest;
  const json = {
    format: manifestFormat,
    jobId,
    version,
    generation,
    worldSize,
    backends,
    ledger: { step: ledger.step, epoch: ledger.epoch, offset: ledger.offset },
    reason,
    createdUnixMs,
    createdAt: new Date(createdUnixMs).toISOString(),
    shards,
    spec: toJson(JobSpecSchema, spec),
  };
  return `${JSON.stringify(json, null, 2)}\n`;
}

/** Reads a manifest's JSON text; INVALID_ARGUMENT naming `file` and the field when it is not one. */
export function parseManifest(text: string, file: string): CheckpointManifest {
  const bad = (field: string, problem: string) =>
    new TrainfleetError(Code.INVALID_ARGUMENT, `checkpoint manifest ${file}: ${field}: ${problem}`, { field });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw bad("(file)", `not JSON: ${String(error)}`);
  }
  const object = (value: unknown, field: string): Record<string, unknown> => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw bad(field, "must be an object");
    return value as Record<string, unknown>;
  };
  const count = (value: unknown, field: string): number => {
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0)
      throw bad(field, `must be a non-negative integer, got ${JSON.stringify(value)}`);
    return value;
  };
  const string = (value: unknown, field: string): string => {
    if (typeof value !== "string" || value === "") throw bad(field, `must be a non-empty string, got ${JSON.stringify(value)}`);
    return value;
  };
  const root = object(json, "(file)");
  if (root["format"] !== manifestFormat)
    throw bad("format", `${JSON.stringify(root["format"])} is not "${manifestFormat}", which this trainfleet reads`);
  const ledger = object(root["ledger"], "ledger");
  const shardList: unknown = root["shards"];
  if (!Array.isArray(shardList) || shardList.length === 0) throw bad("shards", "must list the shards' files");
  const shards = shardList.map((entry: unknown, i) => {
    const shard = object(entry, `shards[${i}]`);
    const sha256 = string(shard["sha256"], `shards[${i}].sha256`);
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw bad(`shards[${i}].sha256`, `"${sha256}" is not a lower-case hex sha256`);
    return {
      index: count(shard["index"], `shards[${i}].index`),
      begin: count(shard["begin"], `shards[${i}].begin`),
      end: count(shard["end"], `shards[${i}].end`),
      file: string(shard["file"], `shards[${i}].file`),
      sha256,
      bytes: count(shard["bytes"], `shards[${i}].bytes`),
    };
  });
  shards.forEach((shard, i) => {
    if (shard.index !== i) throw bad(`shards[${i}].index`, `${shard.index}: shards must be listed in index order 0..${shards.length - 1}`);
  });
  let spec: ResolvedJobSpec;
  try {
    spec = resolveJobSpec(fromJson(JobSpecSchema, root["spec"] as JsonValue));
  } catch (error) {
    throw bad("spec", TrainfleetError.from(error).message);
  }
  const manifest: CheckpointManifest = {
    jobId: string(root["jobId"], "jobId"),
    version: count(root["version"], "version"),
    generation: count(root["generation"], "generation"),
    worldSize: count(root["worldSize"], "worldSize"),
    backends: Array.isArray(root["backends"]) ? root["backends"].map(String) : [],
    ledger: {
      step: count(ledger["step"], "ledger.step"),
      epoch: count(ledger["epoch"], "ledger.epoch"),
      offset: count(ledger["offset"], "ledger.offset"),
    },
    reason: root["reason"] === "terminated" ? "terminated" : "periodic",
    createdUnixMs: count(root["createdUnixMs"], "createdUnixMs"),
    shards,
    spec,
  };
  if (manifest.ledger.step !== manifest.version)
    throw bad("ledger.step", `${manifest.ledger.step}, but the checkpoint is of version ${manifest.version}`);
  if (manifest.jobId !== spec.jobId) throw bad("jobId", `"${manifest.jobId}", but the spec's is "${spec.jobId}"`);
  if (shards.length !== spec.parameterServers!.shards)
    throw bad("shards", `${shards.length} files, but the job has ${spec.parameterServers!.shards} shards`);
  if (manifest.worldSize < 1 || manifest.worldSize > spec.workers!.maxWorkers)
    throw bad("worldSize", `${manifest.worldSize}, but the job has 1 to ${spec.workers!.maxWorkers} workers`);
  return manifest;
}

/** `latest.json`: which manifest is the newest complete checkpoint. */
export function latestJson(version: number, manifestName: string): string {
  return `${JSON.stringify({ version, manifest: manifestName }, null, 2)}\n`;
}

export function parseLatest(text: string, file: string): { version: number; manifest: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new TrainfleetError(Code.INVALID_ARGUMENT, `${file}: not JSON: ${String(error)}`);
  }
  const latest = json as { version?: unknown; manifest?: unknown } | null;
  if (typeof latest?.manifest !== "string" || typeof latest.version !== "number") {
    throw new TrainfleetError(Code.INVALID_ARGUMENT, `${file}: expected {"version": N, "manifest": "checkpoint-N.json"}`);
  }
  return { version: latest.version, manifest: latest.manifest };
}
