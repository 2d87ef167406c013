/**
 * A worker's recent step timings, folded from its progress reports into exponentially
 * weighted means. Its own file so that members.ts (which keeps one per worker) and
 * member-status.ts (which shows it) need not import each other.
 */

/** A worker's recent step timings, in milliseconds. */
export interface StepTiming {
  stepMs: number;
  computeMs: number;
  communicateMs: number;
  /** Progress reports folded in so far. */
  reports: number;
}

/** Weight of the newest report in the exponentially weighted means of StepTiming. */
export const timingWeight = 0.2;

/** Folds one progress report into the worker's timings (the first report is taken as is). */
export function recordTiming(timing: StepTiming, computeMs: number, communicateMs: number): void {
  const w = timing.reports === 0 ? 1 : timingWeight;
  timing.computeMs += w * (computeMs - timing.computeMs);
  timing.communicateMs += w * (communicateMs - timing.communicateMs);
  timing.stepMs = timing.computeMs + timing.communicateMs;
  timing.reports++;
}
