/**
 * Where the job stands in its life: the phase (moved only by job-phase.ts transitions),
 * the reason and message the status shows, the status revision that watchers wait on, and
 * the JobEvents that tell the outside about each change (hints; the status is the truth).
 * The coordinator's modules decide what happens; this only records it and says so.
 */
import { isFinished, JobEventKind, JobPhase } from "@trainfleet/proto";
import type { JobEventInit, JobEventRecorder } from "../events/job-event-recorder.js";
import type { Member } from "../membership/members.js";
import { ChangeNotifier } from "../status/change-notifier.js";
import type { PhaseEvent } from "./job-phase.js";
import { transition } from "./job-phase.js";

/** Where a started job's training is, as the events report it. */
export interface LifecyclePosition {
  readonly generation: number;
  readonly tracker: { readonly completed: number };
}

export class JobLifecycle {
  #phase: JobPhase = JobPhase.PENDING;
  #reason = "WaitingForJob";
  #message = "";
  readonly #changes = new ChangeNotifier();
  readonly #events: JobEventRecorder | undefined;
  /** None until a spec is submitted: no events before then. */
  #jobId: string | undefined;
  /** None until the job has started. */
  #position: LifecyclePosition | undefined;

  constructor(events: JobEventRecorder | undefined) {
    this.#events = events;
  }

  get phase(): JobPhase {
    return this.#phase;
  }

  get reason(): string {
    return this.#reason;
  }

  get message(): string {
    return this.#message;
  }

  get revision(): number {
    return this.#changes.revision;
  }

  /** The job whose events these are (from its submission on). */
  submitted(jobId: string): void {
    this.#jobId = jobId;
  }

  /** The started job's plan, whose generation and step go into every event from now on. */
  started(position: LifecyclePosition): void {
    this.#position = position;
  }

  /** Moves the phase by `event` (throws if the phase does not allow it) and sets the reason and message. */
  apply(event: PhaseEvent, reason: string, message: string): void {
    const from = this.#phase;
    this.#phase = transition(this.#phase, event);
    this.setReason(reason, message);
    // The end is published by JobEnd (FINISHED), once the job has fully ended.
    if (from === JobPhase.PENDING && this.#phase === JobPhase.RUNNING) this.publish({ kind: JobEventKind.STARTED });
    else if (from !== this.#phase && !isFinished(this.#phase)) this.publish({ kind: JobEventKind.PHASE_CHANGED });
  }

  setReason(reason: string, message: string): void {
    this.#reason = reason;
    this.#message = message;
    this.changed();
  }

  /** Something in the status changed: watchers wake. */
  changed(): void {
    this.#changes.changed();
  }

  /** Resolves when the status has changed since `revision`, or on abort. */
  changedSince(revision: number, signal: AbortSignal): Promise<void> {
    return this.#changes.after(revision, signal);
  }

  /** A JobEvent with the job's phase, reason, message, generation and step as they are now. */
  publish(init: JobEventInit): void {
    if (this.#events === undefined || this.#jobId === undefined) return;
    const position = this.#position;
    this.#events.event({
      jobId: this.#jobId,
      phase: this.#phase,
      reason: this.#reason,
      message: this.#message,
      generation: position?.generation ?? 0,
      step: position?.tracker.completed ?? 0,
      ...init,
    });
  }
}

/** Which member an event is about. */
export function memberFields(member: Member): JobEventInit {
  return { memberId: member.id, memberRole: member.role, rank: member.rank, shardIndex: Math.max(0, member.shardIndex) };
}
