/**
 * The pods a running job should have, and the Rescaling condition that follows changes of their
 * number: what is missing is created (the gang's PodGroup, the coordinator's Service, the
 * coordinator, one pod per shard and per worker rank; sent to the nodes of the ResourceFlavors
 * Kueue admitted them to, kueue-flavors.ts), workers above the desired count are
 * deleted, highest ranks first. Running pods within the desired count are never touched: scaling
 * restarts nothing. New pods come with what secures them: the job's NetworkPolicy and the
 * Secrets of their credentials (member-credentials.ts); the pods that stay have theirs renewed
 * when due. A job with pods is reconciled again every statusPollMs (reconcile.ts), so a
 * renewal (due 8 hours before a 24-hour certificate ends) is never waited for long.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { timestamp } from "./conditions.js";
import { defaultOperatorPeer, jobNetworkPolicy } from "./job-network-policy.js";
import { steered } from "./kueue-flavors.js";
import { credentialRequest, isInsecure } from "./member-credentials.js";
import { indexOf, isFinishedPod, roleOf } from "./observed-pods.js";
import { coordinatorPod, coordinatorService, desiredWorkers, shardPod, workerPod } from "./pod-manifests.js";
import { podScheduling } from "./pod-scheduling.js";
import type { ReconcilePass } from "./reconcile-pass.js";
import { coordinatorTraining } from "./reported-status.js";
import { shardCount, workerReplicas } from "./training-job.js";

export function createAndScale(pass: ReconcilePass): void {
  const { job, observed, plan, status } = pass;
  const gang = podScheduling(job, pass.options);
  const trainingReplicas = (status.trainingReplicas ??= workerReplicas(job));
  const taken = new Set(observed.pods.map((pod) => pod.metadata?.name));
  const wanted: V1Pod[] = [coordinatorPod(job, trainingReplicas, gang)];
  for (let index = 0; index < shardCount(job); index++) wanted.push(shardPod(job, index, gang));
  const workers = desiredWorkers(job, trainingReplicas);
  for (let rank = 0; rank < workers; rank++) wanted.push(workerPod(job, rank, gang));
  if (gang.podGroup !== undefined && !observed.podGroupExists) plan.create.push(gang.podGroup);
  if (observed.service === undefined) plan.create.push(coordinatorService(job));
  // A pod still terminating keeps its name: it is made again once it is gone.
  // Pods Kueue admitted go to the nodes of their ResourceFlavors.
  const created = wanted.filter((pod) => !taken.has(pod.metadata?.name)).map((pod) => steered(pod, pass.steering.get(roleOf(pod)!)));
  if (created.length > 0) secureNewPods(pass, created);
  renewCredentials(pass, workers);
  plan.create.push(...created);
  for (const pod of pass.live) if (roleOf(pod) === "worker" && indexOf(pod) >= workers) pass.deletePod(pod);
  if (plan.create.some((object) => object.kind === "Pod")) status.startTime ??= timestamp(observed.now);
  // Worker ranks that have a pod, in any state, or get one now: the scale subresource's replicas.
  const ranks = new Set([...observed.pods, ...(plan.create as V1Pod[])].filter((pod) => roleOf(pod) === "worker").map(indexOf));
  status.replicas = ranks.size;
  updateRescaling(pass, workers, ranks.size);
}

/**
 * What new pods need before they are created: the job's NetworkPolicy (made with the first pods
 * and again whenever one is made: it may have been deleted, and one that exists is fine), the
 * tokens with the coordinator, and each pod's TLS credentials (none with spec.security.insecure,
 * which gets a Warning instead).
 */
function secureNewPods(pass: ReconcilePass, created: readonly V1Pod[]): void {
  const { job, plan } = pass;
  plan.create.push(jobNetworkPolicy(job, pass.options.operatorPeer ?? defaultOperatorPeer));
  const coordinator = created.some((pod) => roleOf(pod) === "coordinator");
  plan.secrets.tokens ||= coordinator;
  if (isInsecure(job)) {
    if (coordinator)
      plan.events.push({
        type: "Warning",
        reason: "Insecure",
        message: "spec.security.insecure: the job's pods talk in plaintext, neither encrypted nor authenticated; remove it for mutual TLS",
      });
    return;
  }
  for (const pod of created) {
    const role = roleOf(pod)!;
    plan.secrets.members.push(credentialRequest(job, role, pod.metadata!.name!, role === "coordinator" ? undefined : indexOf(pod)));
  }
}

/** The credentials of the live pods that stay (running or about to, workers within `workers`): renewed when due. */
function renewCredentials(pass: ReconcilePass, workers: number): void {
  if (isInsecure(pass.job)) return;
  for (const pod of pass.live) {
    const role = roleOf(pod);
    const name = pod.metadata?.name;
    if (role === undefined || name === undefined || isFinishedPod(pod) || (role === "worker" && indexOf(pod) >= workers)) continue;
    pass.plan.renewSecrets.push(credentialRequest(pass.job, role, name, role === "coordinator" ? undefined : indexOf(pod)));
  }
}

/**
 * Rescaling: from a change of the desired worker count (against the count the last pass left)
 * until the coordinator reports that many workers training. A failed worker being replaced
 * is no rescale: its rank keeps counting while it is made again.
 */
function updateRescaling(pass: ReconcilePass, desired: number, existing: number): void {
  const { conditions, job } = pass;
  if (desired !== workerReplicas(job)) {
    conditions.set(
      "Rescaling",
      "False",
      "NotElastic",
      `colocated placement runs a shard in each worker: the job keeps its ${desired} workers (spec.workers.replicas is ${workerReplicas(job)})`,
    );
    return;
  }
  const before = pass.resumed ? desired : (pass.before.replicas ?? desired);
  const training = Math.min(desired, job.spec.workers?.maxWorkers ?? desired);
  const ready = pass.status.readyReplicas;
  if (desired !== before) {
    conditions.set("Rescaling", "True", desired > before ? "ScalingUp" : "ScalingDown", `worker pods: ${before} -> ${desired}`);
  } else if (conditions.isTrue("Rescaling")) {
    if (existing === desired && coordinatorTraining(pass.observed.coordinator) && ready === training)
      conditions.set("Rescaling", "False", "Rescaled", `${desired} workers training`);
    else if (existing === desired)
      conditions.set("Rescaling", "True", "WaitingForWorkers", `${ready ?? 0} of ${training} workers training`);
  }
}
