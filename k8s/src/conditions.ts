/**
 * A TrainingJob's conditions, in the Kubernetes convention: one entry per type, whose
 * lastTransitionTime changes only when its status does. The phase is the most significant True
 * condition (a finished job is Succeeded or Failed whatever else is true).
 */
import type { Condition, ConditionType } from "./training-job.js";

/** From most to least significant: the first True one is the phase. */
const phaseOrder: readonly ConditionType[] = [
  "Failed",
  "Succeeded",
  "Suspended",
  "Restarting",
  "Rescaling",
  "Running",
  "Admitted",
  "Created",
];

/** Kubernetes timestamps: RFC 3339 in seconds. */
export function timestamp(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

export interface ConditionChange {
  condition: Condition;
  /** The condition did not exist or had another status or reason before. */
  changed: boolean;
}

export class Conditions {
  readonly #list: Condition[];
  readonly #before: ReadonlyMap<ConditionType, Condition>;

  constructor(
    current: readonly Condition[] | undefined,
    private readonly now: Date,
    private readonly generation: number | undefined,
  ) {
    this.#list = (current ?? []).map((condition) => ({ ...condition }));
    this.#before = new Map((current ?? []).map((condition) => [condition.type, condition]));
  }

  get(type: ConditionType): Condition | undefined {
    return this.#list.find((condition) => condition.type === type);
  }

  isTrue(type: ConditionType): boolean {
    return this.get(type)?.status === "True";
  }

  set(type: ConditionType, status: Condition["status"], reason: string, message: string): void {
    const existing = this.get(type);
    const next: Condition = {
      type,
      status,
      reason,
      message,
      lastTransitionTime: existing !== undefined && existing.status === status ? existing.lastTransitionTime : timestamp(this.now),
    };
    if (this.generation !== undefined) next.observedGeneration = this.generation;
    if (existing === undefined) this.#list.push(next);
    else Object.assign(existing, next);
  }

  /** Sets the condition False only where it exists (a job that never rescaled has no Rescaling condition). */
  clear(type: ConditionType, reason: string, message: string): void {
    if (this.get(type) !== undefined) this.set(type, "False", reason, message);
  }

  phase(): ConditionType | undefined {
    return phaseOrder.find((type) => this.isTrue(type));
  }

  list(): Condition[] {
    return this.#list.map((condition) => ({ ...condition }));
  }

  /** The conditions whose status or reason changed since construction: each is a transition worth an Event. */
  transitions(): Condition[] {
    return this.#list.filter((condition) => {
      const before = this.#before.get(condition.type);
      return before === undefined || before.status !== condition.status || before.reason !== condition.reason;
    });
  }
}
