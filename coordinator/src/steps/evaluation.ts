/**
 * The evaluation at the end of training: the test set split contiguously over the ranks
 * of the current generation, and their counts summed once every rank has reported. A
 * membership change while evaluating starts it again over the new ranks.
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import type { EvaluateAssignment, EvaluateAssignmentSchema, ReportEvaluationRequest } from "@trainfleet/proto";

export interface EvaluationResult {
  accuracy: number;
  loss: number;
  samples: number;
}

export class Evaluation {
  readonly #reported = new Set<string>();
  #samples = 0;
  #correct = 0;
  #lossSum = 0;

  constructor(private readonly ranks: number) {}

  /** Rank r's part of the first `total` test samples, at parameter version `version`. */
  static assignment(
    rank: number,
    ranks: number,
    total: number,
    generation: number,
    version: number,
  ): MessageInitShape<typeof EvaluateAssignmentSchema> | EvaluateAssignment {
    return { generation, version, begin: Math.floor((total * rank) / ranks), end: Math.floor((total * (rank + 1)) / ranks) };
  }

  /** Adds one rank's counts (a repeat is ignored); the result once every rank has reported. */
  report(memberId: string, request: ReportEvaluationRequest): EvaluationResult | undefined {
    if (this.#reported.has(memberId)) return undefined;
    this.#reported.add(memberId);
    this.#samples += request.samples;
    this.#correct += request.correct;
    this.#lossSum += request.lossSum;
    if (this.#reported.size < this.ranks) return undefined;
    const samples = this.#samples;
    return { accuracy: samples > 0 ? this.#correct / samples : 0, loss: samples > 0 ? this.#lossSum / samples : 0, samples };
  }
}
