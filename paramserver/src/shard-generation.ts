/**
 * A shard's place in the job's generations. Each ShardAssignment of a new generation
 * closes the shard (no push taken, no pull served) until the coordinator opens it at the
 * lowest version any shard holds; a shard one version ahead goes back first, which its
 * second buffers allow only while no chunk of the next step has overwritten them.
 *
 * Also here: in which generation the shard reached its current version (checkpoints
 * carry it, so that the coordinator can ignore a version that was then abandoned), and
 * whether the version before is still held to go back to.
 */
import { Code, TrainfleetError } from "@trainfleet/proto";

export type ShardPhase = "unconfigured" | "closed" | "open";

export class ShardGeneration {
  #generation = 0;
  #phase: ShardPhase = "unconfigured";
  /** The generation the shard was in when it reached its current version. */
  #reachedIn = 0;
  /** Same for the version before, while the second buffers hold it. */
  #previousReachedIn = 0;
  /** Why the version before cannot be gone back to; undefined while it can. */
  #previousLost: string | undefined = "it holds no earlier version";

  /** The generation of the latest ShardAssignment (0 before the first). */
  get generation(): number {
    return this.#generation;
  }

  /** Pushes are taken (push-validation.ts refuses them otherwise) and pulls served only while open. */
  get phase(): ShardPhase {
    return this.#phase;
  }

  get reachedIn(): number {
    return this.#reachedIn;
  }

  /** A ShardAssignment of a new generation (a repeat of the current one never gets here): the shard closes. */
  take(generation: number): void {
    // Version 0 (or the restored one) is reached in the first generation.
    if (this.#phase === "unconfigured") this.#reachedIn = generation;
    this.#generation = generation;
    this.#phase = "closed";
  }

  /** open_generation for `generation`: true when the shard is to open now, false when it is open for it already. */
  opening(generation: number): boolean {
    if (this.#phase === "unconfigured" || generation !== this.#generation) {
      throw new TrainfleetError(
        Code.FAILED_PRECONDITION,
        `generation: cannot open generation ${generation}: this shard took ${this.#phase === "unconfigured" ? "no assignment yet" : `the assignment of generation ${this.#generation}`}; send its ShardAssignment first`,
        { field: "generation" },
      );
    }
    return this.#phase === "closed";
  }

  open(): void {
    this.#phase = "open";
  }

  /**
   * The generation a pull belongs to: the one the shard is open for when the pull first
   * finds it open (undefined until then: it waits). ABORTED once the shard has taken
   * another generation's assignment, as what the pull serves belongs to the old one.
   */
  pullGeneration(bound: number | undefined): number | undefined {
    if (bound !== undefined && bound !== this.#generation) {
      throw new TrainfleetError(Code.ABORTED, `the job moved to generation ${this.#generation}; pull again after your next assignment`);
    }
    return bound ?? (this.#phase === "open" ? this.#generation : undefined);
  }

  /** A step completed: the new version is reached now, the one before stays in the second buffers. */
  stepCompleted(): void {
    this.#previousReachedIn = this.#reachedIn;
    this.#reachedIn = this.#generation;
    this.#previousLost = undefined;
  }

  /** A chunk of `step` was applied: its results overwrote the version before the current one. */
  chunkApplied(step: number): void {
    this.#previousLost ??= `a chunk of step ${step} was applied since, over it`;
  }

  /** The shard's state was replaced (a restore): its version counts as reached now, and there is no version before to go back to. */
  restored(): void {
    this.#reachedIn = this.#generation;
    this.#previousLost = "the shard was restored from a checkpoint since";
  }

  /** Going back from `from` to `to`: throws FAILED_PRECONDITION naming both unless `to` is the version before and still held. */
  rollBack(from: number, to: number): void {
    const lost =
      to !== from - 1
        ? `it can only go on from its own version or go back one`
        : this.#previousLost === undefined
          ? undefined
          : `version ${to} is gone: ${this.#previousLost}`;
    if (lost !== undefined) {
      throw new TrainfleetError(
        Code.FAILED_PRECONDITION,
        `cannot open generation ${this.#generation} at version ${to}: this shard holds version ${from}, and ${lost}; resume the job from a checkpoint`,
      );
    }
    this.#reachedIn = this.#previousReachedIn;
    this.#previousLost = `it went back to version ${to} already`;
  }
}
