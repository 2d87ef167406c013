/**
 * What a coordinator keeps so that, killed and started again, it resumes its job rather
 * than starting over: which job (and its resolved spec), where its checkpoints are, the
 * newest membership generation begun, and whether the job is over. Pure: the JSON form
 * and its reader, with errors that name the store and the field. The stores (a file, or
 * NATS JetStream KV) are in file-state-store.ts and nats-state-store.ts.
 *
 *   {
 *     "format": "trainfleet-coordinator-state/1",
 *     "jobId": "fashion-mnist",
 *     "checkpointDir": "/data/checkpoints",   "" when the job takes no checkpoints
 *     "generation": 3,                         a restarted coordinator begins above it
 *     "finished": false,                       true: the job succeeded or failed, do not resume it
 *     "updatedUnixMs": 1764370000000, "updatedAt": "2025-11-28T22:46:40.000Z",
 *     "spec": { ...the resolved JobSpec, protobuf JSON... }
 *   }
 */

import type { JsonValue } from "@bufbuild/protobuf";
import { fromJson, toJson } from "@bufbuild/protobuf";
import { Code, JobSpecSchema, TrainfleetError } from "@trainfleet/proto";
import type { ResolvedJobSpec } from "@trainfleet/spec";
import { resolveJobSpec } from "@trainfleet/spec";

export const coordinatorStateFormat = "trainfleet-coordinator-state/1";

export interface CoordinatorState {
  jobId: string;
  /** The job's spec, resolved where the record is read (parseCoordinatorState): a restart trusts it. */
  spec: ResolvedJobSpec;
  /** Where the job's checkpoints go; "" when it takes none. */
  checkpointDir: string;
  /** The newest membership generation begun: a restarted coordinator continues above it. */
  generation: number;
  /** The job succeeded or failed: a restarted coordinator must not resume it. */
  finished: boolean;
  updatedUnixMs: number;
}

/** The record of a job's run as it stands: `generation` the newest begun, `checkpointDir` none when it takes no checkpoints. */
export function coordinatorState(
  spec: ResolvedJobSpec,
  checkpointDir: string | undefined,
  generation: number,
  finished: boolean,
  updatedUnixMs: number,
): CoordinatorState {
  return { jobId: spec.jobId, spec, checkpointDir: checkpointDir ?? "", generation, finished, updatedUnixMs };
}

export function coordinatorStateJson(state: CoordinatorState): string {
  const { jobId, spec, checkpointDir, generation, finished, updatedUnixMs } = state;
  const json = {
    format: coordinatorStateFormat,
    jobId,
    checkpointDir,
    generation,
    finished,
    updatedUnixMs,
    // For people reading the record; the reader ignores it.
    updatedAt: Number.isFinite(updatedUnixMs) ? new Date(updatedUnixMs).toISOString() : null,
    spec: toJson(JobSpecSchema, spec),
  };
  return `${JSON.stringify(json, null, 2)}\n`;
}

/**
 * Reads a record's JSON text; INVALID_ARGUMENT naming `where` (the store's description)
 * and the field when it is not one. With `jobId`, the record must be that job's.
 */
export function parseCoordinatorState(text: string, where: string, jobId?: string): CoordinatorState {
  const bad = (field: string, problem: string) =>
    new TrainfleetError(Code.INVALID_ARGUMENT, `coordinator state in ${where}: ${field}: ${problem}`, { field });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw bad("(record)", `not JSON: ${String(error)}; delete it to start the job afresh`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw bad("(record)", "must be a JSON object");
  const root = json as Record<string, unknown>;
  const count = (field: string): number => {
    const value = root[field];
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0)
      throw bad(field, `must be a non-negative integer, got ${JSON.stringify(value)}`);
    return value;
  };
  if (root["format"] !== coordinatorStateFormat)
    throw bad("format", `${JSON.stringify(root["format"])} is not "${coordinatorStateFormat}", which this trainfleet reads`);
  const id = root["jobId"];
  if (typeof id !== "string" || id === "") throw bad("jobId", `must be a non-empty string, got ${JSON.stringify(id)}`);
  if (jobId !== undefined && id !== jobId) throw bad("jobId", `"${id}", but this is job "${jobId}"'s record`);
  const checkpointDir = root["checkpointDir"];
  if (typeof checkpointDir !== "string") throw bad("checkpointDir", `must be a string ("" for none), got ${JSON.stringify(checkpointDir)}`);
  const finished = root["finished"];
  if (typeof finished !== "boolean") throw bad("finished", `must be true or false, got ${JSON.stringify(finished)}`);
  const generation = count("generation");
  const updatedUnixMs = count("updatedUnixMs");
  if (root["spec"] === undefined) throw bad("spec", "missing: the record must hold the job's spec");
  let spec: ResolvedJobSpec;
  try {
    // Validated like a submitted spec: a record written by an older trainfleet may not pass.
    spec = resolveJobSpec(fromJson(JobSpecSchema, root["spec"] as JsonValue));
  } catch (error) {
    const cause = TrainfleetError.from(error, Code.INVALID_ARGUMENT);
    // The spec's own errors name their field (spec.workers.replicas): keep it.
    if (cause.field !== undefined)
      throw new TrainfleetError(Code.INVALID_ARGUMENT, `coordinator state in ${where}: ${cause.message}`, { field: cause.field, cause });
    throw bad("spec", cause.message);
  }
  if (spec.jobId !== id) throw bad("jobId", `"${id}", but the spec's is "${spec.jobId}"`);
  return { jobId: id, spec, checkpointDir, generation, finished, updatedUnixMs };
}
