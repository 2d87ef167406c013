/** Which phases of a job are final: a Succeeded or Failed job changes no more. */
import { JobPhase } from "../gen/trainfleet/v1/job_pb.js";

export function isFinished(phase: JobPhase): boolean {
  return phase === JobPhase.SUCCEEDED || phase === JobPhase.FAILED;
}
