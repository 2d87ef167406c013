/**
 * What a job's pods carry for whoever admits them to the cluster: the gang's PodGroup labels,
 * annotations and scheduler (gang.ts), and Kueue's queue label for Kueue's own pod integration.
 * The label goes only when the operator's Kueue integration is off: with it on, the job's
 * Workload is what Kueue admits (kueue-admission.ts), and a labelled pod would be queued a
 * second time, on its own, by Kueue's pod integration. The pods and the Workload's pod set
 * templates are built with the same plan, so that they ask for the same.
 */
import type { GangPlan } from "./gang.js";
import { gangPlan } from "./gang.js";
import { labels } from "./names.js";
import type { ReconcileOptions } from "./reconcile-plan.js";
import type { TrainingJob } from "./training-job.js";

/** The job is admitted by Kueue through its Workload: it names a queue and the operator runs with --kueue. */
export function admittedThroughWorkload(job: TrainingJob, options: Pick<ReconcileOptions, "kueue">): boolean {
  return options.kueue === true && job.spec.scheduling?.queueName !== undefined;
}

export function podScheduling(job: TrainingJob, options: Pick<ReconcileOptions, "podGroupApis" | "kueue">): GangPlan {
  const plan = gangPlan(job, options.podGroupApis);
  const queue = job.spec.scheduling?.queueName;
  if (queue === undefined || admittedThroughWorkload(job, options)) return plan;
  return { ...plan, podLabels: { ...plan.podLabels, [labels.kueueQueue]: queue } };
}
