/**
 * The Admitted condition. Without gang admission a job is admitted at once; with it (gang.ts), when
 * every pod of its minimum set is scheduled, and it fails with GangTimeout when that has not
 * happened scheduling.gang.timeoutSeconds after it began waiting. The wait begins with the first
 * pass (the WaitingForGang condition's lastTransitionTime), which writes it even when every
 * create is refused (create-failures.ts), so a job whose pods are never created times out too,
 * saying why they were not.
 */
import { timestamp } from "./conditions.js";
import { gangEnabled, gangState, gangTimeoutSeconds } from "./gang.js";
import type { ReconcilePass } from "./reconcile-pass.js";

/** Returns false when the gang timed out (the job has failed). */
export function admit(pass: ReconcilePass): boolean {
  const { conditions, job, observed } = pass;
  if (conditions.isTrue("Admitted")) return true;
  if (!gangEnabled(job)) {
    conditions.set("Admitted", "True", "Admitted", "gang admission is off: the job's pods are created at once");
    return true;
  }
  const state = gangState(job, observed.pods);
  if (state.admitted) {
    conditions.set("Admitted", "True", "GangScheduled", `all ${state.size} pods of the minimum set are scheduled`);
    return true;
  }
  const waiting = conditions.get("Admitted");
  const since =
    waiting?.status === "False" && waiting.reason === "WaitingForGang" ? Date.parse(waiting.lastTransitionTime) : observed.now.getTime();
  const deadlineMs = since + gangTimeoutSeconds(job) * 1000;
  const missing = `${state.size - state.missing.length} of ${state.size} pods of the minimum set are scheduled; not yet: ${state.missing.join(", ")}`;
  if (observed.now.getTime() >= deadlineMs) {
    const refused = conditions.get("CreateFailed");
    const why = refused?.status === "True" ? `; ${refused.message}` : "";
    pass.finish("Failed", "GangTimeout", `${missing}${why}; scheduling.gang.timeoutSeconds (${gangTimeoutSeconds(job)}) passed`);
    return false;
  }
  conditions.set("Admitted", "False", "WaitingForGang", `${missing}; the job fails at ${timestamp(new Date(deadlineMs))}`);
  pass.pollAgainIn(deadlineMs - observed.now.getTime());
  return true;
}
