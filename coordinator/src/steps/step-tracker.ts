/**
 * Which steps are complete. A step is complete when every rank has reported it (a rank
 * reports after pulling the version the step produced), or when a membership change finds
 * every shard past it (newGeneration). Reports may arrive out of order; completion advances
 * in step order. Also keeps the loss and throughput figures.
 */
export interface StepReport {
  rank: number;
  step: number;
  loss: number;
  samples: number;
}

/** A step that just became complete; `completed` is the step count it brought the job to; `loss` NaN when no rank reported it. */
export interface CompletedStep {
  completed: number;
  loss: number;
  samples: number;
  at: number;
}

interface Pending {
  ranks: Set<number>;
  lossTimesSamples: number;
  samples: number;
}

export class StepTracker {
  #completed: number;
  #pending = new Map<number, Pending>();
  #window: Array<{ at: number; samples: number }> = [];
  lastLoss = Number.NaN;
  /** Called for every step that becomes complete, in step order (for history and metrics). */
  onStepComplete: ((step: CompletedStep) => void) | undefined;

  /** `completed`: steps done before this tracker started (a job resumed from a checkpoint). */
  constructor(
    private worldSize: number,
    private readonly now: () => number,
    completed = 0,
  ) {
    this.#completed = completed;
  }

  /** Training goes back to a checkpoint of version `version`: the steps after it are to be run again. */
  rewind(version: number): void {
    this.#completed = version;
    this.#pending.clear();
  }

  /**
   * A new generation of `worldSize` ranks goes on from parameter version `version`: the
   * steps below it that every shard applied are complete (their loss from the ranks that
   * reported), and reports of the abandoned steps are forgotten (they are run again).
   */
  newGeneration(worldSize: number, version: number): void {
    if (version < this.#completed)
      throw new Error(`a generation cannot go on from version ${version}: ${this.#completed} steps are complete`);
    while (this.#completed < version)
      this.#complete(this.#pending.get(this.#completed) ?? { ranks: new Set(), lossTimesSamples: 0, samples: 0 });
    this.#pending.clear();
    this.worldSize = worldSize;
  }

  /** Steps completed so far (the parameter version the shards have reached). */
  get completed(): number {
    return this.#completed;
  }

  /** Records one report; returns how many steps became complete because of it. */
  report(report: StepReport): number {
    if (report.step < this.#completed) return 0;
    let pending = this.#pending.get(report.step);
    if (pending === undefined) {
      pending = { ranks: new Set(), lossTimesSamples: 0, samples: 0 };
      this.#pending.set(report.step, pending);
    }
    if (pending.ranks.has(report.rank)) return 0;
    pending.ranks.add(report.rank);
    pending.lossTimesSamples += report.loss * report.samples;
    pending.samples += report.samples;
    let advanced = 0;
    for (
      let next = this.#pending.get(this.#completed);
      next !== undefined && next.ranks.size === this.worldSize;
      next = this.#pending.get(this.#completed)
    ) {
      this.#complete(next);
      advanced++;
    }
    return advanced;
  }

  #complete(step: Pending): void {
    this.#pending.delete(this.#completed);
    this.#completed++;
    // A step settled by a membership change before any rank reported it has no loss.
    const loss = step.samples > 0 ? step.lossTimesSamples / step.samples : Number.NaN;
    if (!Number.isNaN(loss)) this.lastLoss = loss;
    const at = this.now();
    this.#window.push({ at, samples: step.samples });
    if (this.#window.length > 50) this.#window.shift();
    this.onStepComplete?.({ completed: this.#completed, loss, samples: step.samples, at });
  }

  /** Samples per second over the last completed steps. */
  samplesPerSecond(): number {
    const first = this.#window[0];
    const last = this.#window[this.#window.length - 1];
    if (first === undefined || last === undefined || last.at <= first.at) return 0;
    const samples = this.#window.slice(1).reduce((sum, entry) => sum + entry.samples, 0);
    return (samples * 1000) / (last.at - first.at);
  }
}
