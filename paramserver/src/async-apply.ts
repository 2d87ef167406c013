/**
 * Bounded-staleness async mode, the shard's side (ShardConfig.mode "async"). Ranks do not
 * wait for each other: each rank's chunks land in its row of the StepBarrier, and once
 * that rank has every chunk its whole gradient (the mean over its own batch) is applied
 * alone, one version per gradient, in arrival order; other ranks' partial pushes stay.
 *
 * A push's `step` is the version its gradient was computed from. At the push's first
 * chunk: a step above the shard's version is refused FAILED_PRECONDITION, and one more
 * than maxStaleness versions behind is refused ABORTED (the worker pulls and computes it
 * again). Judged once per push, so a push taken is not refused half-way because other
 * ranks' gradients landed meanwhile. A worker pushes its steps in order, one at a time:
 * a step at or below its rank's last applied one is a retry, acknowledged as duplicate
 * (checked before staleness: it was applied, and must not be computed again), and a
 * newer step than the one its row holds abandons the row (a push cut off part-way).
 */
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { Range } from "@trainfleet/spec";
import { bufferSplit } from "./buffer-region.js";
import type { Optimizer } from "./optimizer.js";
import type { PushHeader } from "./push-validation.js";
import type { StepBarrier } from "./step-barrier.js";

export class AsyncPushes {
  /** By rank: the step of its gradient last applied in this generation (-1: none yet). */
  #lastApplied: number[] = [];
  /** By rank: the step the chunks in its barrier row belong to. */
  #rowStep: number[] = [];

  constructor(private readonly barrier: StepBarrier) {}

  /** A new generation (ranks may be others) or a restore: no rank has applied anything. */
  reset(worldSize: number): void {
    this.#lastApplied = new Array<number>(worldSize).fill(-1);
    this.#rowStep = new Array<number>(worldSize).fill(-1);
  }

  /**
   * Whether the chunk belongs to the push in progress of its rank ("current") or to one
   * applied already ("applied"); else an error, nothing touched. `first`: whether it is
   * the first chunk of its push, where staleness is judged.
   */
  check(version: number, maxStaleness: number, request: PushHeader, first: boolean): "current" | "applied" {
    const { rank, step } = request;
    if (step > version) {
      throw new TrainfleetError(
        Code.FAILED_PRECONDITION,
        `step: step ${step} is from the future; the shard is at version ${version}, so pull the parameters and push a gradient computed from them`,
        { field: "step" },
      );
    }
    if (step <= this.#lastApplied[rank]!) return "applied";
    const stale = version - step;
    if (first && maxStaleness > 0 && stale > maxStaleness) {
      throw new TrainfleetError(
        Code.ABORTED,
        `step: the gradient of rank ${rank} was computed from version ${step}, the shard is at ${version}: ${stale} versions stale, more than training.maxStaleness ${maxStaleness}; pull and compute it again`,
        { field: "step" },
      );
    }
    if (this.barrier.chunksOf(rank) > 0 && this.#rowStep[rank] !== step) {
      if (step < this.#rowStep[rank]!) {
        throw new TrainfleetError(
          Code.ABORTED,
          `step: rank ${rank} has begun pushing its gradient from version ${this.#rowStep[rank]} since; this push from version ${step} is superseded`,
          { field: "step" },
        );
      }
      this.barrier.resetRank(rank);
    }
    this.#rowStep[rank] = step;
    return "current";
  }

  /** Rank's row was applied: retries of its step are duplicates from now on. */
  applied(rank: number): void {
    this.#lastApplied[rank] = this.#rowStep[rank]!;
  }
}

/**
 * Writes into `out` the slice after one update with `rank`'s whole gradient: the chunks
 * it pushed (in `received`) or lent, update number `t`. The optimizer works element by
 * element, so chunk by chunk gives the bits of one call over the whole slice. The buffers
 * from `bufferBegin` on (buffer-region.ts) become rank 0's values when it is rank 0's
 * gradient, and stay as they were for any other rank's.
 */
export function applyRankGradient(
  optimizer: Optimizer,
  params: Float32Array,
  out: Float32Array,
  chunks: readonly Range[],
  barrier: StepBarrier,
  rank: number,
  received: Float32Array,
  { t, bufferBegin }: { t: number; bufferBegin: number },
): void {
  for (let index = 0; index < chunks.length; index++) {
    const { begin, end } = chunks[index]!;
    const source = barrier.source(rank, index, received);
    const split = bufferSplit(begin, end, bufferBegin);
    if (split > begin) optimizer.apply(params, source.subarray(begin, split), out, begin, split, t);
    if (split === end) continue;
    if (rank === 0) out.set(source.subarray(split, end), split);
    else if (out !== params) out.set(params.subarray(split, end), split);
  }
}
