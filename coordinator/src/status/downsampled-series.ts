/**
 * A per-step series (the training loss) kept in bounded memory for the job status. Each
 * step's value goes into the newest point; a point is full when it covers `stride` steps.
 * When `capacity` full points are held, neighbouring points are merged pairwise (the
 * mean of both, weighted by the steps each covers) and the stride doubles. So the series
 * always spans the whole run, with at most `capacity` points, each covering the same
 * number of steps except the newest one, which is still filling.
 */
export interface SeriesPointValue {
  /** The last step the point covers (1-based, like JobStatus.step). */
  step: number;
  /** The mean of the covered steps' values. */
  value: number;
  /** How many consecutive steps the point covers. */
  steps: number;
}

export class DownsampledSeries {
  readonly #capacity: number;
  #full: SeriesPointValue[] = [];
  #stride = 1;
  #pending: { sum: number; steps: number; last: number } | undefined;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 2 || capacity % 2 !== 0)
      throw new Error(`capacity must be an even integer of at least 2, got ${capacity}`);
    this.#capacity = capacity;
  }

  /** Adds the value of `step`; steps are expected in increasing order. */
  add(step: number, value: number): void {
    const pending = this.#pending ?? { sum: 0, steps: 0, last: step };
    pending.sum += value;
    pending.steps++;
    pending.last = step;
    this.#pending = pending;
    if (pending.steps < this.#stride) return;
    this.#full.push({ step: pending.last, value: pending.sum / pending.steps, steps: pending.steps });
    this.#pending = undefined;
    // Merged before the next point can be shown, so points() never exceeds the capacity.
    if (this.#full.length === this.#capacity) this.#merge();
  }

  /** At most `capacity` points, oldest first; the last may cover fewer steps than the others. */
  points(): SeriesPointValue[] {
    const points = this.#full.map((p) => ({ ...p }));
    const pending = this.#pending;
    if (pending !== undefined) points.push({ step: pending.last, value: pending.sum / pending.steps, steps: pending.steps });
    return points;
  }

  #merge(): void {
    const merged: SeriesPointValue[] = [];
    for (let i = 0; i + 1 < this.#full.length; i += 2) {
      const a = this.#full[i]!;
      const b = this.#full[i + 1]!;
      const steps = a.steps + b.steps;
      merged.push({ step: b.step, value: (a.value * a.steps + b.value * b.steps) / steps, steps });
    }
    this.#full = merged;
    this.#stride *= 2;
  }
}
