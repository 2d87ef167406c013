/**
 * The coordinator's place in the sample ledger: which step comes next and which samples
 * it takes. Caches the current epoch's permutation, which is the same for the same
 * (seed, epoch) every time it is computed.
 */
import { epochPermutation, planStep } from "./ledger.js";
import type { LedgerPosition, PlannedStep } from "./ledger.js";

export class SampleCursor {
  #position: LedgerPosition = { epoch: 0, offset: 0 };
  #permutation: { epoch: number; order: Uint32Array } | undefined;
  /** The number of the next step to hand out. */
  step = 0;

  constructor(
    private readonly seed: number,
    private readonly datasetSize: number,
    private readonly batchSizePerWorker: number,
  ) {}

  /** Plans the next step for `worldSize` ranks and moves past it. */
  next(worldSize: number): PlannedStep & { step: number } {
    const epoch = this.#position.epoch;
    if (this.#permutation?.epoch !== epoch) this.#permutation = { epoch, order: epochPermutation(this.seed, epoch, this.datasetSize) };
    const planned = planStep(this.#position, this.#permutation.order, worldSize, this.batchSizePerWorker);
    this.#position = planned.next;
    return { ...planned, step: this.step++ };
  }
}
