/**
 * The pods and the Service the operator makes for a TrainingJob: the coordinator (with a Service
 * in front of its gRPC and HTTP ports), one pod per parameter-server shard and one per worker
 * rank, all running the job's one image with the role as argument, each with what every pod
 * gets by default (pod-defaults.ts: restricted security, resources) and its role's template
 * merged over it (pod-templates.ts); the coordinator also mounts the output claim
 * (job-output.ts). Pure functions of the job: desired-pods.ts decides which to create.
 */

import { toJsonString } from "@bufbuild/protobuf";
import type { V1Container, V1EnvVar, V1Pod, V1PodSpec, V1Service, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import { JobSpecSchema } from "@trainfleet/proto";
import type { GangPlan } from "./gang.js";
import { outputDirEnv, outputMount } from "./job-output.js";
import { coordinatorJobSpec } from "./job-spec.js";
import { credentialRequest, podCredentials } from "./member-credentials.js";
import type { Role } from "./names.js";
import { coordinatorName, labels, ports, roleLabels, shardPodName, workerPodName } from "./names.js";
import { ownerReference } from "./owner.js";
import { defaultContainerSecurityContext, defaultPodSecurityContext, podResources, scratchSpace } from "./pod-defaults.js";
import { withTemplate } from "./pod-templates.js";
import type { TrainingJob } from "./training-job.js";
import { workerReplicas } from "./training-job.js";
import { credentialEnv, storageVolume } from "./user-files.js";

/** Where checkpoints and the coordinator's state live in the pods, on the job's claim. */
export const checkpointMountPath = "/var/lib/trainfleet/checkpoints";
/** How long the coordinator keeps serving the final status after the job ends, for the operator to read it. */
export const coordinatorLingerMs = 600_000;

export function coordinatorService(job: TrainingJob): V1Service {
  const name = coordinatorName(job.metadata.name);
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name,
      namespace: job.metadata.namespace,
      labels: roleLabels(job.metadata.name, "coordinator"),
      ownerReferences: [ownerReference(job)],
    },
    spec: {
      selector: { [labels.jobName]: job.metadata.name, [labels.role]: "coordinator" },
      ports: [
        { name: "grpc", port: ports.coordinatorGrpc, targetPort: ports.coordinatorGrpc },
        { name: "http", port: ports.coordinatorHttp, targetPort: ports.coordinatorHttp },
      ],
    },
  };
}

/** host:port of the coordinator's HTTP status API inside the cluster. */
export function coordinatorEndpoint(job: TrainingJob): string {
  return `${coordinatorName(job.metadata.name)}.${job.metadata.namespace}.svc:${ports.coordinatorHttp}`;
}

function coordinatorAddress(job: TrainingJob): string {
  return `${coordinatorName(job.metadata.name)}:${ports.coordinatorGrpc}`;
}

export function coordinatorPod(job: TrainingJob, trainingReplicas: number, gang: GangPlan): V1Pod {
  const env: V1EnvVar[] = [
    { name: "TRAINFLEET_LISTEN", value: `0.0.0.0:${ports.coordinatorGrpc}` },
    { name: "TRAINFLEET_HTTP_LISTEN", value: `0.0.0.0:${ports.coordinatorHttp}` },
    { name: "TRAINFLEET_LINGER_MS", value: String(coordinatorLingerMs) },
    { name: "TRAINFLEET_SPEC", value: toJsonString(JobSpecSchema, coordinatorJobSpec(job, trainingReplicas)) },
  ];
  if (job.spec.checkpoints !== undefined) env.push({ name: "TRAINFLEET_CHECKPOINT_DIR", value: checkpointMountPath });
  env.push(...outputDirEnv(job));
  const built = pod(job, "coordinator", coordinatorName(job.metadata.name), undefined, gang, {
    args: ["coordinator"],
    env,
    ports: [
      { name: "grpc", containerPort: ports.coordinatorGrpc },
      { name: "http", containerPort: ports.coordinatorHttp },
    ],
    readinessProbe: { httpGet: { path: "/readyz", port: ports.coordinatorHttp }, periodSeconds: 5 },
    resources: podResources("coordinator", job.spec.coordinator?.resources),
  });
  return withTemplate(built, job.spec.coordinator?.template);
}

export function shardPod(job: TrainingJob, index: number, gang: GangPlan): V1Pod {
  const built = pod(job, "parameter-server", shardPodName(job.metadata.name, index), index, gang, {
    args: ["ps"],
    env: [
      { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
      { name: "TRAINFLEET_SHARD_INDEX", value: String(index) },
      // Workers dial the address the shard registers, so it must be the pod's own.
      { name: "TRAINFLEET_LISTEN", value: `$(POD_IP):${ports.parameterServer}` },
      { name: "TRAINFLEET_COORDINATOR", value: coordinatorAddress(job) },
      { name: "TRAINFLEET_METRICS_LISTEN", value: `0.0.0.0:${ports.metrics}` },
    ],
    ports: [
      { name: "data", containerPort: ports.parameterServer },
      { name: "metrics", containerPort: ports.metrics },
    ],
    resources: podResources("parameter-server", job.spec.parameterServers?.resources),
  });
  return withTemplate(built, job.spec.parameterServers?.template);
}

export function workerPod(job: TrainingJob, rank: number, gang: GangPlan): V1Pod {
  const env: V1EnvVar[] = [
    { name: "TRAINFLEET_COORDINATOR", value: coordinatorAddress(job) },
    // The name its certificate is issued for (member-credentials.ts): the coordinator checks one against the other.
    { name: "TRAINFLEET_HOST", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
  ];
  if (job.spec.parameterServers?.placement === "colocated") {
    env.unshift({ name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } });
    env.push(
      { name: "TRAINFLEET_COLOCATED_SHARD_INDEX", value: String(rank) },
      { name: "TRAINFLEET_LISTEN", value: `$(POD_IP):${ports.parameterServer}` },
    );
  }
  const built = pod(job, "worker", workerPodName(job.metadata.name, rank), rank, gang, {
    args: ["worker"],
    env,
    resources: podResources("worker", job.spec.workers?.resources),
  });
  return withTemplate(built, job.spec.workers?.template);
}

/** How many worker pods the job should have now. */
export function desiredWorkers(job: TrainingJob, trainingReplicas: number | undefined): number {
  // Colocated shards live inside the workers: that fleet cannot change size.
  if (job.spec.parameterServers?.placement === "colocated" && trainingReplicas !== undefined) return trainingReplicas;
  return workerReplicas(job);
}

function pod(
  job: TrainingJob,
  role: Role,
  name: string,
  index: number | undefined,
  gang: GangPlan,
  container: Omit<V1Container, "name" | "image">,
): V1Pod {
  const { scheduling, checkpoints } = job.spec;
  const podLabels = { ...roleLabels(job.metadata.name, role, index), ...gang.podLabels };
  // The root filesystem is read-only: /tmp is the one place written outside the volumes below.
  const scratch = scratchSpace();
  const mounts: V1VolumeMount[] = [scratch.mount];
  const volumes: V1Volume[] = [scratch.volume];
  // Shards write their slices where the coordinator writes the manifest: colocated ones from inside the workers.
  const writesCheckpoints = role !== "worker" || job.spec.parameterServers?.placement === "colocated";
  if (checkpoints !== undefined && writesCheckpoints) {
    volumes.push({ name: "checkpoints", persistentVolumeClaim: { claimName: checkpoints.claimName } });
    mounts.push({ name: "checkpoints", mountPath: checkpointMountPath });
  }
  // Every role reads the user's files: the coordinator pins them, shards load initial weights, workers train on them.
  const storage = storageVolume(job);
  if (storage !== undefined) {
    volumes.push(storage.volume);
    mounts.push(storage.mount);
  }
  // Only the coordinator writes the job's output (it pulls the trained parameters from the shards).
  const output = role === "coordinator" ? outputMount(job, volumes) : undefined;
  if (output !== undefined) {
    if (output.volume !== undefined) volumes.push(output.volume);
    mounts.push(output.mount);
  }
  // The pod's certificate and key (and the coordinator's token files), from Secrets the operator made first.
  const credentials = podCredentials(job, credentialRequest(job, role, name, index), role);
  volumes.push(...credentials.volumes);
  mounts.push(...credentials.mounts);
  const env = [...(container.env ?? []), ...credentials.env, ...credentialEnv(job)];
  const spec: V1PodSpec = {
    // The operator restarts failed pods itself, to count them against runPolicy.backoffLimit.
    restartPolicy: "Never",
    // Time for the coordinator's checkpoint on SIGTERM.
    terminationGracePeriodSeconds: 60,
    securityContext: defaultPodSecurityContext(),
    // A failed container's last log lines become its termination message: the operator quotes them.
    containers: [
      {
        name: "trainfleet",
        image: job.spec.image,
        terminationMessagePolicy: "FallbackToLogsOnError",
        securityContext: defaultContainerSecurityContext(),
        ...container,
        ...(env.length > 0 ? { env } : {}),
        volumeMounts: mounts,
      },
    ],
    volumes,
  };
  const schedulerName = gang.schedulerName ?? scheduling?.schedulerName;
  if (schedulerName !== undefined) spec.schedulerName = schedulerName;
  if (scheduling?.priorityClassName !== undefined) spec.priorityClassName = scheduling.priorityClassName;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: job.metadata.namespace,
      labels: podLabels,
      ...(Object.keys(gang.podAnnotations).length > 0 ? { annotations: { ...gang.podAnnotations } } : {}),
      ownerReferences: [ownerReference(job)],
    },
    spec,
  };
}
