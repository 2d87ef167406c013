/**
 * The job's state machine. Transitions are explicit: an event that is not allowed in the
 * current phase is a bug in the caller and throws, instead of silently drifting. A
 * PhaseEvent is this machine's input only; the JobEvent messages that announce changes to
 * the outside are proto's (events/).
 */
import { JobPhase } from "@trainfleet/proto";

/** What moves the job from one phase to the next. */
export type PhaseEvent = "start" | "pause" | "resume" | "trainingDone" | "evaluationDone" | "fail";

const transitions: Record<PhaseEvent, { from: JobPhase[]; to: JobPhase }> = {
  start: { from: [JobPhase.PENDING], to: JobPhase.RUNNING },
  // Fewer workers than min_workers, and enough again (evaluation then starts over from RUNNING).
  pause: { from: [JobPhase.PENDING, JobPhase.RUNNING, JobPhase.EVALUATING], to: JobPhase.PAUSED },
  resume: { from: [JobPhase.PAUSED], to: JobPhase.RUNNING },
  trainingDone: { from: [JobPhase.RUNNING], to: JobPhase.EVALUATING },
  evaluationDone: { from: [JobPhase.EVALUATING], to: JobPhase.SUCCEEDED },
  fail: { from: [JobPhase.PENDING, JobPhase.RUNNING, JobPhase.PAUSED, JobPhase.EVALUATING], to: JobPhase.FAILED },
};

export function transition(phase: JobPhase, event: PhaseEvent): JobPhase {
  const rule = transitions[event];
  if (!rule.from.includes(phase)) throw new Error(`job phase ${JobPhase[phase]} does not allow "${event}"`);
  return rule.to;
}
