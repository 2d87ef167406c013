/**
 * Turns what the coordinator does into JobEvents and StepMetrics: numbers the events
 * (1, 2, 3, ... without gaps), stamps the time, measures the time between steps, and
 * hands them to the bus. It never throws: a failing bus is logged and the job goes on.
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { JobEventSchema, StepMetricsSchema, TrainfleetError } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import type { EventBus } from "./event-bus.js";

export type JobEventInit = Omit<MessageInitShape<typeof JobEventSchema>, "sequence" | "unixMs" | "$typeName">;
export type StepMetricsInit = Omit<MessageInitShape<typeof StepMetricsSchema>, "stepTimeMs" | "unixMs" | "$typeName">;

export class JobEventRecorder {
  readonly #bus: EventBus;
  readonly #logger: Logger;
  readonly #now: () => number;
  #sequence = 0n;
  #lastStepAt: number | undefined;

  constructor(bus: EventBus, logger: Logger, now: () => number) {
    this.#bus = bus;
    this.#logger = logger;
    this.#now = now;
  }

  event(init: JobEventInit): void {
    try {
      this.#bus.publishEvent(create(JobEventSchema, { ...init, sequence: ++this.#sequence, unixMs: BigInt(this.#now()) }));
    } catch (error) {
      this.#logger.warn({ err: TrainfleetError.from(error).message }, "could not publish a job event; the job goes on");
    }
  }

  /** A completed step; `at` is when it completed (the step time is measured from the previous one). */
  metrics(init: StepMetricsInit, at: number): void {
    const stepTimeMs = this.#lastStepAt === undefined ? 0 : at - this.#lastStepAt;
    this.#lastStepAt = at;
    try {
      this.#bus.publishMetrics(create(StepMetricsSchema, { ...init, stepTimeMs, unixMs: BigInt(at) }));
    } catch (error) {
      this.#logger.warn({ err: TrainfleetError.from(error).message }, "could not publish step metrics; the job goes on");
    }
  }
}
