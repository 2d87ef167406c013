/**
 * The coordinator's place in the sample ledger: which step comes next and which samples
 * it takes. Caches the current epoch's order (sample-order.ts), which is the same for the
 * same (seed, epoch) every time it is computed. A checkpoint records its position; a
 * resumed job starts a cursor there and hands out exactly the steps the first run would
 * have. The global batch is the job's, fixed; `next` splits it over however many ranks
 * there are.
 */

import type { EpochOrder } from "./epoch-order.js";
import type { LedgerPosition, PlannedStep } from "./ledger.js";
import { planStep, positionOfStep } from "./ledger.js";
import type { SampleOrder } from "./sample-order.js";
import { epochOrder, globalOrder } from "./sample-order.js";

/** Where the cursor stands: the next step to hand out and where its samples begin. */
export interface CursorPosition extends LedgerPosition {
  step: number;
}

export class SampleCursor {
  #position: LedgerPosition;
  #epochOrder: { epoch: number; order: EpochOrder } | undefined;
  /** The number of the next step to hand out. */
  step: number;

  /** `order`: the job's (sampleOrderOf(spec)); global, the ledger's first order, when not given. */
  constructor(
    private readonly seed: number,
    private readonly datasetSize: number,
    private readonly globalBatchSize: number,
    start: CursorPosition = { step: 0, epoch: 0, offset: 0 },
    private readonly order: SampleOrder = globalOrder,
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
    if (this.#epochOrder?.epoch !== epoch) {
      this.#epochOrder = { epoch, order: epochOrder(this.order, this.seed, epoch, this.datasetSize, this.globalBatchSize) };
    }
    const planned = planStep(this.#position, this.#epochOrder.order, worldSize, this.globalBatchSize);
    this.#position = planned.next;
    return { ...planned, step: this.step++ };
  }

  /** Moves back (or on) to step `step`: after a membership change, the abandoned steps are handed out again. */
  seek(step: number): void {
    this.#position = positionOfStep(step, this.datasetSize, this.globalBatchSize);
    this.step = step;
  }
}
