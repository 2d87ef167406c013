/**
 * One worker's part of a job: a model replica that pulls parameters, computes the gradient
 * of its slice of each global batch, pushes it, and evaluates at the end. A new generation
 * gives it a new rank (reassign) and nothing else changes. It holds nothing durable; the
 * parameter-server shards hold the state.
 */

import type { ParameterClient, ShardLink } from "@trainfleet/dataplane";
import { createParameterClient, shardEndpoint } from "@trainfleet/dataplane";
import { kernelFloat32Array } from "@trainfleet/kernels";
import type {
  ClientOf,
  CoordinatorService,
  EvaluateAssignment,
  StepAssignment,
  TransportSecurity,
  WorkerAssignment,
} from "@trainfleet/proto";
import { Code, TrainfleetError, TrainingMode } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import { dataShape, parameterLayout } from "@trainfleet/spec";
import type { HostBatch } from "./compute/host-batch.js";
import type { Model } from "./compute/model.js";
import { buildModel } from "./compute/model.js";
import type { RecordSet, TrainingData } from "./dataset/record-set.js";
import { scaleGradient } from "./gradient-scale.js";
import { ProgressStream } from "./progress-stream.js";
import { workerFailure } from "./worker-failure.js";

/** Test-set samples evaluated per forward pass. */
const evaluationBatch = 1000;

/** Async mode: how many times a step's gradient is computed again for a shard that finds it too stale. */
const maxStaleRetries = 20;

/** A shard in this worker's process (colocated placement) and how to reach it in memory. */
export interface ColocatedShard {
  index: number;
  link(jobId: string): ShardLink;
}

/** What a trainer needs from the worker around it. */
export interface TrainerContext {
  memberId: string;
  data: TrainingData;
  coordinator: ClientOf<typeof CoordinatorService>;
  logger: Logger;
  colocatedShard?: ColocatedShard | undefined;
  /** The worker's credentials: the shards are reached over mutual TLS, each checked to be the one dialled. */
  security?: TransportSecurity | undefined;
}

export class Trainer {
  #assignment: WorkerAssignment;
  readonly #memberId: string;
  readonly #data: TrainingData;
  readonly #coordinator: ClientOf<typeof CoordinatorService>;
  readonly #progress: ProgressStream;
  readonly #baseLogger: Logger;
  #logger: Logger;
  readonly #model: Model;
  readonly #parameters: ParameterClient;
  readonly #params: Float32Array;
  readonly #gradient: Float32Array;
  /** The parameter version held in #params; -1 before the first pull. */
  #version = -1;

  /**
   * Builds the job's model (a user's is read, checked against the digest pinned in the
   * spec, and run once forward and backward) and checks that its parameters are the
   * layout every other role derives from the spec.
   */
  static async create(assignment: WorkerAssignment, context: TrainerContext): Promise<Trainer> {
    const spec = assignment.spec!;
    const layout = parameterLayout(spec.model!, dataShape(spec.dataset!));
    const model = await buildModel(spec.model!, dataShape(spec.dataset!));
    const mismatch = layout.tensors.findIndex((slot, i) => slot.shape.join() !== model.tensors[i]?.shape.join());
    if (model.parameterCount !== layout.parameterCount || mismatch >= 0) {
      model.dispose();
      throw new TrainfleetError(
        Code.FAILED_PRECONDITION,
        `the model this worker built has ${model.parameterCount} parameters in ${model.tensors.length} tensors, the job's layout ` +
          `${layout.parameterCount} in ${layout.tensors.length}${mismatch >= 0 ? ` (first difference: ${layout.tensors[mismatch]!.name})` : ""}`,
      );
    }
    if (model.notExact.length > 0) context.logger.warn({ reasons: model.notExact }, "this model does not train bit-exactly");
    return new Trainer(assignment, context, model);
  }

  private constructor(assignment: WorkerAssignment, context: TrainerContext, model: Model) {
    const spec = assignment.spec!;
    this.#assignment = assignment;
    this.#memberId = context.memberId;
    this.#data = context.data;
    this.#coordinator = context.coordinator;
    this.#progress = new ProgressStream(context.coordinator, context.logger);
    this.#baseLogger = context.logger;
    this.#logger = context.logger.child({ rank: assignment.rank, generation: assignment.generation });
    this.#model = model;
    const shards = assignment.shards.map(shardEndpoint);
    const { chunkBytes, dataPlane, wireDtype } = spec.parameterServers!;
    const colocated = context.colocatedShard;
    const local = new Map(colocated === undefined ? [] : [[colocated.index, colocated.link(spec.jobId)]]);
    this.#parameters = createParameterClient({
      jobId: spec.jobId,
      shards,
      chunkBytes,
      dataPlane,
      local,
      wireDtype,
      security: context.security,
    });
    // In the kernel memory, where 16-bit wire conversions run as SIMD.
    this.#params = kernelFloat32Array(model.parameterCount);
    this.#gradient = kernelFloat32Array(model.parameterCount);
  }

  /** Whether a new generation's assignment keeps this trainer: the same job and the same shards (a restarted shard listens elsewhere). */
  canTake(assignment: WorkerAssignment): boolean {
    const now = this.#assignment;
    const sameShards =
      assignment.shards.length === now.shards.length &&
      assignment.shards.every((s, i) => s.address === now.shards[i]!.address && s.dataAddress === now.shards[i]!.dataAddress);
    return assignment.spec!.jobId === now.spec!.jobId && sameShards;
  }

  /** How long the job may stay paused (a lost shard, too few workers): how long a failed step waits for the next assignment. */
  get pauseTimeoutSeconds(): number {
    return this.#assignment.spec!.workers!.pauseTimeoutSeconds;
  }

  /** A new generation of the same job: a new rank and world size. The parameters are pulled again (the shards may have gone back a version). */
  reassign(assignment: WorkerAssignment): void {
    this.#assignment = assignment;
    this.#logger = this.#baseLogger.child({ rank: assignment.rank, generation: assignment.generation });
    this.#version = -1;
  }

  async step(step: StepAssignment, signal: AbortSignal): Promise<void> {
    if (this.#assignment.spec!.training!.mode === TrainingMode.ASYNC) return this.#asyncStep(step, signal);
    const { generation, rank, worldSize } = this.#assignment;
    const started = performance.now();
    // The records are read while the parameters are pulled (a sharded dataset's blocks may be remote).
    const reading = this.#read(this.#data.train, step.sampleIndices, signal);
    reading.catch(() => {}); // awaited below; a pull that fails first must not leave it unhandled
    await this.#ensureVersion(step.step, signal);
    const batch = await reading;
    const pulled = performance.now();
    let loss = 0;
    if (batch.count === 0) this.#emptySlice();
    else {
      loss = this.#model.lossAndGradient(this.#params, batch, this.#gradient);
      // Only the gradient: the buffers after it are pushed as they are.
      scaleGradient(this.#gradient.subarray(0, this.#model.trainableCount), batch.count, worldSize, step.globalBatchSize);
    }
    const computed = performance.now();
    this.#version = await this.#parameters
      .pushThenPull({ generation, step: step.step, rank }, this.#gradient, this.#params, { signal })
      .catch((error: unknown) => Promise.reject(this.#nonFinite(error)));
    const finished = performance.now();
    this.#logger.debug({ step: step.step, loss, computeMs: computed - pulled, pushPullMs: finished - computed }, "step done");
    this.#report(step, loss, batch.count, computed - pulled, pulled - started + (finished - computed));
  }

  /** Tells the coordinator this rank's part of `step` is in (not awaited: the next step goes on). */
  #report(step: StepAssignment, loss: number, samples: number, computeMs: number, communicateMs: number): void {
    const { generation } = this.#assignment;
    this.#progress.send({
      memberId: this.#memberId,
      generation,
      step: step.step,
      loss,
      samples,
      computeMs,
      communicateMs,
      bytesRead: BigInt(this.#bytesRead()),
    });
  }

  /**
   * Async mode: no waiting for the other workers. Pull each shard's newest version, compute
   * the mean gradient of this slice alone (the shards apply each worker's on its own), push
   * each shard its part tagged with the version it came from. A shard that has moved on by
   * more than training.maxStaleness refuses with ABORTED: pull and compute again, for that
   * shard only (the others applied their part, once).
   */
  async #asyncStep(step: StepAssignment, signal: AbortSignal): Promise<void> {
    const { generation, rank } = this.#assignment;
    const batch = await this.#read(this.#data.train, step.sampleIndices, signal);
    let pending: Array<number | undefined> = this.#assignment.shards.map(() => 0);
    let loss = 0;
    const time = { computeMs: 0, communicateMs: 0 };
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      const versions = await this.#parameters.pullEach(0, this.#params, { signal });
      const pulled = performance.now();
      if (batch.count === 0) this.#emptySlice();
      else loss = this.#model.lossAndGradient(this.#params, batch, this.#gradient);
      const computed = performance.now();
      const failures = await this.#parameters.pushEach(
        { generation, rank },
        pending.map((todo, i) => (todo === undefined ? undefined : versions[i])),
        this.#gradient,
        { signal },
      );
      time.computeMs += computed - pulled;
      time.communicateMs += pulled - started + (performance.now() - computed);
      const fatal = failures.find((failure) => failure !== undefined && failure.code !== Code.ABORTED);
      if (fatal !== undefined) throw this.#nonFinite(fatal);
      pending = failures.map((failure) => (failure === undefined ? undefined : 0));
      if (pending.every((todo) => todo === undefined)) break;
      if (attempt >= maxStaleRetries)
        throw new TrainfleetError(
          Code.ABORTED,
          `step ${step.step}: the gradient was too stale for a shard ${attempt} times in a row: ${failures.find((f) => f !== undefined)!.message}`,
        );
      this.#logger.debug(
        { step: step.step, attempt, err: failures.find((f) => f !== undefined)!.message },
        "gradient too stale for a shard; computing it again",
      );
    }
    // Shards hold different versions in async: none is kept for the next step.
    this.#version = -1;
    this.#report(step, loss, batch.count, time.computeMs, time.communicateMs);
  }

  async evaluate(evaluation: EvaluateAssignment, signal: AbortSignal): Promise<void> {
    await this.#ensureVersion(evaluation.version, signal);
    let correct = 0;
    let lossSum = 0;
    for (let begin = evaluation.begin; begin < evaluation.end; begin += evaluationBatch) {
      const indices = Array.from({ length: Math.min(evaluationBatch, evaluation.end - begin) }, (_, i) => begin + i);
      const result = this.#model.evaluate(this.#params, await this.#read(this.#data.eval, indices, signal));
      correct += result.correct;
      lossSum += result.lossSum;
    }
    const samples = evaluation.end - evaluation.begin;
    this.#logger.info({ samples, correct, version: this.#version, trainBytesRead: this.#data.train.bytesRead }, "evaluated");
    await this.#coordinator.reportEvaluation(
      { memberId: this.#memberId, generation: evaluation.generation, samples, correct, lossSum },
      { signal },
    );
  }

  /**
   * The records at `indices`. A read that fails (a missing or corrupt shard, storage that
   * stays unreachable) is the data's fault, which no new assignment mends: DataUnavailable.
   */
  async #read(records: RecordSet, indices: ArrayLike<number>, signal: AbortSignal): Promise<HostBatch> {
    try {
      return await records.batch(indices, signal);
    } catch (error) {
      if (signal.aborted) throw error;
      throw workerFailure("DataUnavailable", error);
    }
  }

  /** What this worker has read from the dataset's storage; evaluation may share the training records (and count). */
  #bytesRead(): number {
    const { train, eval: evaluation } = this.#data;
    return train.bytesRead + (evaluation === train ? 0 : evaluation.bytesRead);
  }

  close(): void {
    this.#progress.close();
    this.#parameters.close();
    this.#model.dispose();
  }

  /**
   * A push the shards refused as invalid while this worker's gradient holds a NaN or an
   * infinity: the loss diverged (the shard's message says where), which no new assignment
   * mends. Looked at only when a push was refused, so the steps that go through pay nothing.
   */
  #nonFinite(error: unknown): unknown {
    if (TrainfleetError.from(error).code !== Code.INVALID_ARGUMENT || this.#gradient.every(Number.isFinite)) return error;
    return workerFailure("NonFiniteGradient", error);
  }

  /** A rank with no samples this step pushes a zero gradient and leaves the buffers as it pulled them. */
  #emptySlice(): void {
    const trainable = this.#model.trainableCount;
    this.#gradient.fill(0, 0, trainable);
    this.#gradient.set(this.#params.subarray(trainable), trainable);
  }

  async #ensureVersion(version: number, signal: AbortSignal): Promise<void> {
    if (this.#version === version) return;
    // Async shards count versions on their own (one per applied gradient): any that has reached `version` will do.
    if (this.#assignment.spec!.training!.mode === TrainingMode.ASYNC) await this.#parameters.pullEach(version, this.#params, { signal });
    else this.#version = await this.#parameters.pull(version, this.#params, { signal });
  }
}
