/**
 * Which steps are complete. A step is complete when every rank has reported it (a rank
 * reports after pulling the version the step produced). Reports may arrive out of order;
 * completion advances in step order. Also keeps the loss and throughput figures.
 */
export interface StepReport {
  rank: number;
  step: number;
  loss: number;
  samples: number;
}

/** A step that just became complete; `completed` is the step count it brought the job to. */
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
    private readonly worldSize: number,
    private readonly now: () => number,
    completed = 0,
  ) {
    this.#completed = completed;
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
    for (let next = this.#pending.get(this.#completed); next !== undefined && next.ranks.size === this.worldSize; next = this.#pending.get(this.#completed)) {
      this.#pending.delete(this.#completed);
      this.#completed++;
      advanced++;
      this.lastLoss = next.samples > 0 ? next.lossTimesSamples / next.samples : Number.NaN;
      this.#window.push({ at: this.now(), samples: next.samples });
      if (this.#window.length > 50) this.#window.shift();
      this.onStepComplete?.({ completed: this.#completed, loss: this.lastLoss, samples: next.samples, at: this.#window[this.#window.length - 1]!.at });
    }
    return advanced;
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
