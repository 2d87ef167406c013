/**
 * Step deadlines, as one shard sees them. The shard can take step v the moment it applied
 * step v-1 (or opened its generation); a rank whose whole push of the step arrives more
 * than `deadlineMs` later missed a deadline, one per period it was late, and a rank the
 * step in progress is still waiting for has missed one per period so far, so a stuck
 * worker counts as surely as a slow one. A rank that pushed a step in time starts again
 * from zero. The heartbeat carries the counts; the coordinator evicts at its limit.
 *
 * Only the shards can tell: in sync mode every rank reports a step to the coordinator
 * after all have pushed it, so reports arrive together whoever was slow.
 */
export class DeadlineWatch {
  #startedAt = 0;
  /** Missed deadlines in a row, by rank, up to the step before the current one. */
  #misses: number[] = [];
  /** When each rank's push of the current step was whole; undefined while it is not. */
  #pushedAt: Array<number | undefined> = [];

  constructor(
    private readonly deadlineMs: number,
    private readonly now: () => number = performance.now.bind(performance),
  ) {}

  /** A generation opened with `worldSize` ranks: every count starts afresh, and so does the step. */
  generationOpened(worldSize: number): void {
    this.#misses = new Array<number>(worldSize).fill(0);
    this.#pushedAt = new Array<number | undefined>(worldSize).fill(undefined);
    this.#startedAt = this.now();
  }

  /** Every chunk of `rank`'s gradient for the current step is in. */
  rankPushed(rank: number): void {
    this.#pushedAt[rank] ??= this.now();
  }

  /** The step was applied: each rank's lateness is settled, and the next step starts now. */
  stepApplied(): void {
    const now = this.now();
    for (let rank = 0; rank < this.#misses.length; rank++) {
      const late = this.#periodsLate(this.#pushedAt[rank] ?? now);
      this.#misses[rank] = late === 0 ? 0 : this.#misses[rank]! + late;
    }
    this.#pushedAt.fill(undefined);
    this.#startedAt = now;
  }

  /** Missed deadlines in a row by rank, the step in progress included as it stands. */
  missedDeadlines(): number[] {
    const now = this.now();
    return this.#misses.map((misses, rank) => misses + (this.#pushedAt[rank] === undefined ? this.#periodsLate(now) : 0));
  }

  #periodsLate(at: number): number {
    return Math.max(0, Math.floor((at - this.#startedAt) / this.deadlineMs));
  }
}
