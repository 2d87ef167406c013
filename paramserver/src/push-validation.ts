/**
 * The checks a pushed gradient chunk must pass before it may touch a shard's buffers.
 * Each failure names the field and says what the caller should do instead.
 */

import { kernelCalls, kernelPointer, wasmKernels } from "@trainfleet/kernels";
import type { PeerIdentity } from "@trainfleet/proto";
import { Code, invalidField, TrainfleetError } from "@trainfleet/proto";
import type { ParameterLayout } from "@trainfleet/spec";

/** The fields of a push that say whose gradient it is and for which step. */
export interface PushHeader {
  jobId: string;
  generation: number;
  step: number;
  rank: number;
}

import type { ShardConfig } from "./shard-config.js";

/**
 * Whether the chunk is for the step in progress ("current") or a retry of the step just
 * applied ("applied"); else an error. `open`: whether the shard has been opened for its
 * generation (see shard-generation.ts).
 */
export function checkPushHeader(config: ShardConfig, version: number, open: boolean, request: PushHeader): "current" | "applied" {
  checkPushSource(config, open, request);
  if (request.step === version) return "current";
  // The step just applied: every rank's chunks were in, so this is a retry. Safe to ack.
  if (request.step + 1 === version) return "applied";
  const which = request.step < version ? "stale" : "from the future";
  throw new TrainfleetError(
    Code.FAILED_PRECONDITION,
    `step: step ${request.step} is ${which}; the shard is at version ${version}, so pull the parameters and push the gradient for step ${version}`,
    { field: "step" },
  );
}

/** The checks of a push's job, generation and rank, which do not depend on the mode. */
export function checkPushSource(config: ShardConfig, open: boolean, request: PushHeader): void {
  if (request.jobId !== config.jobId) {
    throw new TrainfleetError(Code.FAILED_PRECONDITION, `job_id: this shard serves job "${config.jobId}", not "${request.jobId}"`, {
      field: "job_id",
    });
  }
  if (request.generation !== config.generation) {
    throw new TrainfleetError(
      Code.FAILED_PRECONDITION,
      `generation: this shard is at generation ${config.generation}, the push is for ${request.generation}; follow the coordinator's latest assignment`,
      { field: "generation" },
    );
  }
  // Before the step checks: while closed the version may be about to go back, so even a
  // retry of the step just applied could not be acknowledged.
  if (!open) {
    throw new TrainfleetError(
      Code.UNAVAILABLE,
      `this shard is changing to generation ${config.generation} and takes no push until the coordinator opens it; follow the coordinator's next assignment`,
    );
  }
  if (request.rank >= config.worldSize) {
    throw invalidField(
      "rank",
      `rank ${request.rank} is not in generation ${config.generation}, which has ranks 0..${config.worldSize - 1}`,
    );
  }
}

/**
 * Over mutual TLS, only the worker the coordinator gave the rank to may push as it: the
 * pusher's certificate must name rankIdentities[rank]. No peer (an in-process link, which
 * is the worker in this very process) and plaintext (no rank identities) pass.
 */
export function checkPusher(config: ShardConfig, request: PushHeader, peer: PeerIdentity | undefined): void {
  const holder = config.rankIdentities?.[request.rank];
  if (peer === undefined || holder === undefined || (peer.role === "worker" && peer.name === holder)) return;
  throw new TrainfleetError(
    Code.PERMISSION_DENIED,
    `rank: rank ${request.rank} of generation ${config.generation} is ${holder}'s; ${peer.role} ${peer.name} may not push as it`,
    { field: "rank" },
  );
}

/** The chunk index that `offset` is the key of, or an error naming the valid keys. */
export function chunkIndexOf(config: ShardConfig, offset: number, chunkCount: number): number {
  const local = offset - config.range.begin;
  const index = local / config.chunkElements;
  if (!Number.isInteger(index) || index < 0 || index >= chunkCount) {
    throw invalidField(
      "offset",
      `offset ${offset} is not a chunk key of this shard: keys are ${config.range.begin} + k*${config.chunkElements} for k in 0..${chunkCount - 1}, below ${config.range.end}`,
    );
  }
  return index;
}

export function checkChunkLength(offset: number, expectedElements: number, byteLength: number): void {
  if (byteLength !== expectedElements * 4) {
    throw invalidField(
      "data",
      `the chunk at offset ${offset} must hold ${expectedElements} float32 values (${expectedElements * 4} bytes), got ${byteLength} bytes`,
    );
  }
}

/** Throws if values[from, to) holds a NaN or an infinity, naming the parameter tensor. */
export function checkFinite(
  values: Float32Array,
  from: number,
  to: number,
  globalOffset: number,
  layout: ParameterLayout,
  request: PushHeader,
): void {
  if (allFinite(values, from, to)) return;
  let i = from;
  while (Number.isFinite(values[i]!)) i++;
  const element = globalOffset + (i - from);
  const tensor = layout.tensors.find((t) => element >= t.offset && element < t.offset + t.size);
  throw invalidField(
    "data",
    `the gradient of rank ${request.rank} for step ${request.step} holds ${values[i]} at element ${element} (${tensor?.name ?? "?"}); nothing was applied. The worker's loss diverged: lower the learning rate or check its input`,
  );
}

/**
 * Whether values[from, to) holds no NaN and no infinity: the fast scan over every pushed
 * value. In the kernel memory it runs as WebAssembly SIMD (the same test on four lanes),
 * the JavaScript loop doing the tail of fewer than 4 elements; elsewhere in JavaScript.
 */
export function allFinite(values: Float32Array, from: number, to: number): boolean {
  const pointer = kernelPointer(values, from, to);
  const kernels = pointer < 0 ? undefined : wasmKernels();
  if (kernels === undefined) {
    kernelCalls.checkFinite.js++;
    return allFiniteJs(values, from, to);
  }
  kernelCalls.checkFinite.wasm++;
  const count = (to - from) & ~3;
  if (count > 0 && kernels.anyNonFinite(pointer, count) !== 0) return false;
  return allFiniteJs(values, from + count, to);
}

/** The specification of allFinite. */
export function allFiniteJs(values: Float32Array, from: number, to: number): boolean {
  // On the bit patterns: an exponent of all ones (NaN or infinity) plus one carries into
  // bit 31, which no finite value's does. Integer ORs have no dependency chain to wait on,
  // unlike a float sum, and this runs over every pushed value.
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  let carry = 0;
  for (let i = from; i < to; i++) carry |= (bits[i]! & 0x7f800000) + 0x00800000;
  return (carry & 0x80000000) === 0;
}
