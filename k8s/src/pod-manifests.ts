/**
 * The pods and the Service the operator makes for a TrainingJob: the coordinator (with a Service
 * in front of its gRPC and HTTP ports), one pod per parameter-server shard and one per worker
 * rank, all running the job's one image with the role as argument. Pure functions of the job:
 * desired-pods.ts decides which to create.
 */

import { create, toJsonString } from "@bufbuild/protobuf";
import type {
  V1Container,
  V1EnvVar,
  V1Pod,
  V1PodSpec,
  V1ResourceRequirements,
  V1Service,
  V1Volume,
  V1VolumeMount,
} from "@kubernetes/client-node";
import { JobSpecSchema, WorkersSpecSchema } from "@trainfleet/proto";
import type { GangPlan } from "./gang.js";
import { jobSpecFromTrainingJob } from "./job-spec.js";
import type { JsonObject } from "./json.js";
import { isJsonObject } from "./json.js";
import { credentialRequest, podCredentials } from "./member-credentials.js";
import type { Role } from "./names.js";
import { coordinatorName, labels, ports, roleLabels, shardPodName, workerPodName } from "./names.js";
import { ownerReference } from "./owner.js";
import type { ResourceRequirements, TrainingJob } from "./training-job.js";
import { workerReplicas } from "./training-job.js";
import { credentialEnv, storageVolume } from "./user-files.js";

/** Where checkpoints and the coordinator's state live in the pods, on the job's claim. */
export const checkpointMountPath = "/var/lib/trainfleet/checkpoints";
/** How long the coordinator keeps serving the final status after the job ends, for the operator to read it. */
export const coordinatorLingerMs = 600_000;
/** The non-root user of the image (Dockerfile). */
const imageUser = 65532;

/**
 * The JobSpec the coordinator runs. The global batch is fixed when the job starts (status
 * trainingReplicas), so a coordinator created again after scaling keeps it; with maxWorkers
 * unset, scaling up beyond the first replicas trains every worker instead of keeping standbys.
 */
export function coordinatorJobSpec(job: TrainingJob, trainingReplicas: number): string {
  const spec = create(JobSpecSchema, jobSpecFromTrainingJob(job as unknown as JsonObject));
  const workers = (spec.workers ??= create(WorkersSpecSchema));
  workers.replicas = trainingReplicas;
  const colocated = job.spec.parameterServers?.placement === "colocated";
  if (!colocated && job.spec.workers?.maxWorkers === undefined) workers.maxWorkers = 1024;
  return toJsonString(JobSpecSchema, spec);
}

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
    { name: "TRAINFLEET_SPEC", value: coordinatorJobSpec(job, trainingReplicas) },
  ];
  if (job.spec.checkpoints !== undefined) env.push({ name: "TRAINFLEET_CHECKPOINT_DIR", value: checkpointMountPath });
  return pod(job, "coordinator", coordinatorName(job.metadata.name), undefined, gang, {
    args: ["coordinator"],
    env,
    ports: [
      { name: "grpc", containerPort: ports.coordinatorGrpc },
      { name: "http", containerPort: ports.coordinatorHttp },
    ],
    readinessProbe: { httpGet: { path: "/readyz", port: ports.coordinatorHttp }, periodSeconds: 5 },
  });
}

export function shardPod(job: TrainingJob, index: number, gang: GangPlan): V1Pod {
  return pod(job, "parameter-server", shardPodName(job.metadata.name, index), index, gang, {
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
    ...resources(job.spec.parameterServers?.resources),
  });
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
    ...resources(job.spec.workers?.resources),
  });
  return withTemplate(built, job.spec.workers?.template);
}

/** A container's resources, quantities as strings (the CRD also takes plain numbers). */
function resources(requirements: ResourceRequirements | undefined): { resources?: V1ResourceRequirements } {
  if (requirements === undefined) return {};
  const strings = (quantities: Record<string, string | number> | undefined) =>
    quantities === undefined ? {} : Object.fromEntries(Object.entries(quantities).map(([name, value]) => [name, String(value)]));
  const result: V1ResourceRequirements = {};
  if (requirements.requests !== undefined) result.requests = strings(requirements.requests);
  if (requirements.limits !== undefined) result.limits = strings(requirements.limits);
  return { resources: result };
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
  if (scheduling?.queueName !== undefined) podLabels[labels.kueueQueue] = scheduling.queueName;
  const mounts: V1VolumeMount[] = [];
  const volumes: V1Volume[] = [];
  if (checkpoints !== undefined && role !== "worker") {
    volumes.push({ name: "checkpoints", persistentVolumeClaim: { claimName: checkpoints.claimName } });
    mounts.push({ name: "checkpoints", mountPath: checkpointMountPath });
  }
  // Every role reads the user's files: the coordinator pins them, shards load initial weights, workers train on them.
  const storage = storageVolume(job);
  if (storage !== undefined) {
    volumes.push(storage.volume);
    mounts.push(storage.mount);
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
    securityContext: { runAsNonRoot: true, runAsUser: imageUser, runAsGroup: imageUser, fsGroup: imageUser },
    // A failed container's last log lines become its termination message: the operator quotes them.
    containers: [
      {
        name: "trainfleet",
        image: job.spec.image,
        terminationMessagePolicy: "FallbackToLogsOnError",
        ...container,
        ...(env.length > 0 ? { env } : {}),
        ...(mounts.length > 0 ? { volumeMounts: mounts } : {}),
      },
    ],
  };
  if (volumes.length > 0) spec.volumes = volumes;
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

/**
 * The worker template merged over a built worker pod: labels and annotations added (the
 * operator's own labels win), pod spec fields set, containers and volumes merged by name as a
 * strategic merge patch would (and the containers' env by name, volume mounts by path). The
 * trainfleet container's command, args, image and ports stay the operator's.
 */
export function withTemplate(built: V1Pod, template: NonNullable<TrainingJob["spec"]["workers"]>["template"]): V1Pod {
  if (template === undefined) return built;
  const metadata = { ...built.metadata! };
  metadata.labels = { ...template.metadata?.labels, ...metadata.labels };
  const annotations = { ...template.metadata?.annotations, ...metadata.annotations };
  if (Object.keys(annotations).length > 0) metadata.annotations = annotations;
  const spec: Record<string, unknown> = { ...(built.spec as unknown as Record<string, unknown>) };
  for (const [key, value] of Object.entries(template.spec ?? {})) {
    if (key === "containers" && Array.isArray(value)) spec.containers = mergeContainers(built.spec!.containers, value);
    // The template's volumes join the operator's (the data volume stays), as a strategic merge patch does.
    else if (key === "volumes" && Array.isArray(value))
      spec.volumes = mergeByKey(built.spec!.volumes ?? [], value as unknown as V1Volume[], (volume) => volume.name);
    else if (key !== "restartPolicy") spec[key] = value;
  }
  return { ...built, metadata, spec: spec as unknown as V1PodSpec };
}

function mergeContainers(built: V1Container[], overrides: unknown[]): V1Container[] {
  const result = built.map((container) => ({ ...container }));
  for (const override of overrides) {
    if (!isJsonObject(override) || typeof override.name !== "string") continue;
    const index = result.findIndex((container) => container.name === override.name);
    if (index < 0) {
      result.push(override as unknown as V1Container);
      continue;
    }
    const { command: _command, args: _args, ports: _ports, image: _image, env, volumeMounts, ...rest } = override;
    const merged: V1Container = { ...result[index]!, ...(rest as Partial<V1Container>) };
    // Lists merged by key, as a strategic merge patch does: env by name, mounts by path.
    if (Array.isArray(env)) merged.env = mergeByKey(merged.env ?? [], env as unknown as V1EnvVar[], (variable) => variable.name);
    if (Array.isArray(volumeMounts))
      merged.volumeMounts = mergeByKey(merged.volumeMounts ?? [], volumeMounts as unknown as V1VolumeMount[], (mount) => mount.mountPath);
    result[index] = merged;
  }
  return result;
}

/** `base` with each of `overrides` replacing the entry of the same key, or added after them. */
function mergeByKey<T>(base: readonly T[], overrides: readonly T[], key: (item: T) => string): T[] {
  const result = [...base];
  for (const override of overrides) {
    const at = result.findIndex((item) => key(item) === key(override));
    if (at >= 0) result[at] = override;
    else result.push(override);
  }
  return result;
}
