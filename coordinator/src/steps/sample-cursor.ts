/**
 * The coordinator's place in the sample ledger: which step comes next and which samples
 * it takes. Caches the current epoch's permutation, which is the same for the same
 * (seed, epoch) every time it is computed. A checkpoint records its position; a resumed
 * job starts a cursor there and hands out exactly the steps the first run would have.
 * The global batch is the job's, fixed; `next` splits it over however many ranks there are.
 */

import type { LedgerPosition, PlannedStep } from "./ledger.js";
import { epochPermutation, planStep, positionOfStep } from "./ledger.js";

/** Where the cursor stands: the next step to hand out and where its samples begin. */
export interface CursorPosition extends LedgerPosition {
  step: number;
}

export class SampleCursor {
  #position: LedgerPosition;
  #permutation: { epoch: number; order: Uint32Array } | undefined;
  /** The number of the next step to hand out. */
  step: number;

  constructor(
    private readonly seed: number,
    private readonly datasetSize: number,
    private readonly globalBatchSize: number,
    start: CursorPosition = { step: 0, epoch: 0, offset: 0 },
  ) {
    this.#position = { epoch: start.epoch, offset: start.offset };
    this.step = start.step;
  }

  position(): CursorPosition {
    return { step: this.step, ...this.#position };
  }

  /** Plans the next step for `worldSize` ranks and moves past it. */
  next(worldSize: number): PlannedStep & { step: number } {
    const epoch = this.#position.epoch;
    if (this.#permutation?.epoch !== epoch) this.#permutation = { epoch, order: epochPermutation(this.seed, epoch, this.datasetSize) };
    const planned = planStep(this.#position, this.#permutation.order, worldSize, this.globalBatchSize);
    this.#position = planned.next;
    return { ...planned, step: this.step++ };
  }

  /** Moves back (or on) to step `step`: after a membership change, the abandoned steps are handed out again. */
  seek(step: number): void {
    this.#position = positionOfStep(step, this.datasetSize, this.globalBatchSize);
    this.step = step;
  }
}
