/**
 * What each role's pod gets by default and what its template and resources change
 * (pod-defaults.ts, pod-templates.ts): the restricted securityContext with a writable /tmp and
 * the checkpoints claim wherever a shard writes, the output claim in the coordinator;
 * CPU and memory requests and a memory limit per role, replaced resource by resource by the
 * user's; and spec.coordinator.template, spec.parameterServers.template and
 * spec.workers.template merged the same way, securityContexts field by field.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { reconcile } from "../src/reconcile.js";
import type { PodTemplate, TrainingJobSpec } from "../src/training-job.js";
import { observed, reconcileOptions, trainingJob } from "./builders.js";

/** The pods a new job gets, by name. */
function podsOf(spec: Partial<TrainingJobSpec>, colocated = false): Record<string, V1Pod> {
  const job = trainingJob("ml", "tpl").replicas(1).shards(1);
  if (colocated) job.colocated();
  job.spec(spec);
  const plan = reconcile(observed(job).obj(), reconcileOptions());
  const pods = plan.create.filter((object) => object.kind === "Pod") as V1Pod[];
  return Object.fromEntries(pods.map((pod) => [pod.metadata!.name!, pod]));
}

const roles = { coordinator: "tpl-coordinator", parameterServers: "tpl-ps-0", workers: "tpl-worker-0" } as const;
const trainfleet = (pod: V1Pod) => pod.spec!.containers.find((container) => container.name === "trainfleet")!;

describe("a job's pods by default", () => {
  it("run as the image's user under the restricted profile, the root filesystem read-only with an emptyDir at /tmp", () => {
    for (const pod of Object.values(podsOf({}))) {
      expect(pod.spec!.securityContext).toEqual({
        runAsNonRoot: true,
        runAsUser: 65532,
        runAsGroup: 65532,
        fsGroup: 65532,
        fsGroupChangePolicy: "OnRootMismatch",
        seccompProfile: { type: "RuntimeDefault" },
      });
      const container = trainfleet(pod);
      expect(container.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ["ALL"] },
      });
      expect(pod.spec!.volumes).toContainEqual({ name: "trainfleet-tmp", emptyDir: { sizeLimit: "1Gi" } });
      expect(container.volumeMounts).toContainEqual({ name: "trainfleet-tmp", mountPath: "/tmp" });
    }
  });

  it("mount the checkpoints claim where a shard runs: shard pods, or with colocated placement the workers", () => {
    const checkpoints = { checkpoints: { claimName: "ckpt" } };
    const mount = { name: "checkpoints", mountPath: "/var/lib/trainfleet/checkpoints" };
    const dedicated = podsOf(checkpoints);
    for (const name of ["tpl-coordinator", "tpl-ps-0"]) expect(trainfleet(dedicated[name]!).volumeMounts, name).toContainEqual(mount);
    expect(trainfleet(dedicated["tpl-worker-0"]!).volumeMounts).not.toContainEqual(mount);
    const colocated = podsOf(checkpoints, true);
    for (const name of ["tpl-coordinator", "tpl-worker-0"]) expect(trainfleet(colocated[name]!).volumeMounts, name).toContainEqual(mount);
  });

  it("mount the output claim in the coordinator alone, with --output-dir at the job's folder: NAME-UID unless spec.output.path says", () => {
    const output = { persistentVolumeClaim: { claimName: "models" } };
    const env = (pod: V1Pod) => trainfleet(pod).env?.find((variable) => variable.name === "TRAINFLEET_OUTPUT_DIR")?.value;
    const pods = podsOf({ output });
    const coordinator = pods["tpl-coordinator"]!;
    expect(coordinator.spec!.volumes).toContainEqual({ name: "trainfleet-output", persistentVolumeClaim: { claimName: "models" } });
    expect(trainfleet(coordinator).volumeMounts).toContainEqual({ name: "trainfleet-output", mountPath: "/var/lib/trainfleet/output" });
    expect(env(coordinator)).toBe("/var/lib/trainfleet/output/tpl-uid-tpl");
    for (const name of ["tpl-ps-0", "tpl-worker-0"]) {
      expect(
        pods[name]!.spec!.volumes!.map((volume) => volume.name),
        name,
      ).not.toContain("trainfleet-output");
      expect(env(pods[name]!), name).toBeUndefined();
    }
    expect(env(podsOf({ output: { ...output, path: "models/mnist" } })["tpl-coordinator"]!)).toBe(
      "/var/lib/trainfleet/output/models/mnist",
    );
    expect(env(podsOf({})["tpl-coordinator"]!)).toBeUndefined();
  });

  it("declare a claim that holds both the checkpoints and the output once, and mount it at both paths", () => {
    const coordinator = podsOf({ checkpoints: { claimName: "shared" }, output: { persistentVolumeClaim: { claimName: "shared" } } })[
      "tpl-coordinator"
    ]!;
    const claims = coordinator.spec!.volumes!.filter((volume) => volume.persistentVolumeClaim !== undefined);
    expect(claims).toEqual([{ name: "checkpoints", persistentVolumeClaim: { claimName: "shared" } }]);
    expect(trainfleet(coordinator).volumeMounts).toEqual(
      expect.arrayContaining([
        { name: "checkpoints", mountPath: "/var/lib/trainfleet/checkpoints" },
        { name: "checkpoints", mountPath: "/var/lib/trainfleet/output" },
      ]),
    );
  });

  it("mount the files' read-only claim a second time, writable, when the output goes to it too", () => {
    const coordinator = podsOf({
      storage: { persistentVolumeClaim: { claimName: "files" } },
      output: { persistentVolumeClaim: { claimName: "files" } },
    })["tpl-coordinator"]!;
    expect(coordinator.spec!.volumes).toEqual(
      expect.arrayContaining([
        { name: "trainfleet-data", persistentVolumeClaim: { claimName: "files", readOnly: true } },
        { name: "trainfleet-output", persistentVolumeClaim: { claimName: "files" } },
      ]),
    );
  });

  it("request CPU and memory and limit memory, per role, so that a ResourceQuota admits them", () => {
    const pods = podsOf({});
    expect(trainfleet(pods["tpl-coordinator"]!).resources).toEqual({
      requests: { cpu: "250m", memory: "512Mi" },
      limits: { memory: "1Gi" },
    });
    expect(trainfleet(pods["tpl-ps-0"]!).resources).toEqual({ requests: { cpu: "500m", memory: "1Gi" }, limits: { memory: "2Gi" } });
    expect(trainfleet(pods["tpl-worker-0"]!).resources).toEqual({ requests: { cpu: "1", memory: "2Gi" }, limits: { memory: "4Gi" } });
  });
});

describe("a role's resources", () => {
  it("replace the defaults resource by resource: a GPU limit alone keeps the CPU and memory defaults", () => {
    const pods = podsOf({
      workers: { replicas: 1, resources: { limits: { "nvidia.com/gpu": 1 } } },
      coordinator: { resources: { requests: { memory: "3Gi" } } },
      parameterServers: { replicas: 1, resources: { requests: { cpu: 2 }, limits: { cpu: "4", memory: "8Gi" } } },
    });
    expect(trainfleet(pods["tpl-worker-0"]!).resources).toEqual({
      requests: { cpu: "1", memory: "2Gi" },
      limits: { memory: "4Gi", "nvidia.com/gpu": "1" },
    });
    // memory named: its request and limit are the user's alone (no default limit under the request).
    expect(trainfleet(pods["tpl-coordinator"]!).resources).toEqual({ requests: { cpu: "250m", memory: "3Gi" } });
    // A memory limit alone: Kubernetes sets the request equal to it.
    expect(trainfleet(pods["tpl-ps-0"]!).resources).toEqual({ requests: { cpu: "2" }, limits: { cpu: "4", memory: "8Gi" } });
  });
});

describe("each role's template", () => {
  const placement: PodTemplate = {
    metadata: { labels: { team: "vision", "trainfleet.dev/role": "mine" }, annotations: { "example.com/owner": "ml" } },
    spec: {
      nodeSelector: { pool: "cpu" },
      tolerations: [{ key: "dedicated", operator: "Equal", value: "training", effect: "NoSchedule" }],
      affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] } },
      topologySpreadConstraints: [{ maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "ScheduleAnyway" }],
      priorityClassName: "training-control",
      imagePullSecrets: [{ name: "registry" }],
      restartPolicy: "Always",
      volumes: [{ name: "extra", configMap: { name: "settings" } }],
    },
  };

  it.each(Object.entries(roles))(
    "spec.%s.template: labels, annotations and pod spec fields; the operator's labels and restart policy stay",
    (role, name) => {
      const spec = role === "coordinator" ? { coordinator: { template: placement } } : { [role]: { replicas: 1, template: placement } };
      const pods = podsOf(spec as Partial<TrainingJobSpec>);
      const pod = pods[name]!;
      expect(pod.metadata!.labels).toMatchObject({ team: "vision", "trainfleet.dev/role": pod.metadata!.labels!["trainfleet.dev/role"] });
      expect(pod.metadata!.labels!["trainfleet.dev/role"]).not.toBe("mine");
      expect(pod.metadata!.annotations).toEqual({ "example.com/owner": "ml" });
      for (const key of ["nodeSelector", "tolerations", "affinity", "topologySpreadConstraints", "priorityClassName", "imagePullSecrets"])
        expect((pod.spec as unknown as Record<string, unknown>)[key], key).toEqual(placement.spec![key]);
      expect(pod.spec!.restartPolicy).toBe("Never");
      expect(pod.spec!.volumes!.map((volume) => volume.name)).toEqual(
        expect.arrayContaining(["trainfleet-tmp", "trainfleet-tls", "extra"]),
      );
      // The other roles' pods are left alone.
      for (const other of Object.values(roles).filter((candidate) => candidate !== name)) {
        expect(pods[other]!.spec!.nodeSelector, other).toBeUndefined();
        expect(pods[other]!.metadata!.labels!["team"], other).toBeUndefined();
      }
    },
  );

  it("merges securityContexts field by field: another user keeps seccomp, a writable root keeps the dropped capabilities", () => {
    const pods = podsOf({
      workers: {
        replicas: 1,
        template: {
          spec: {
            securityContext: { runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, fsGroupChangePolicy: null },
            containers: [{ name: "trainfleet", securityContext: { readOnlyRootFilesystem: false }, command: ["sh"], image: "other" }],
          },
        },
      },
    });
    const worker = pods["tpl-worker-0"]!;
    expect(worker.spec!.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      fsGroup: 1000,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(trainfleet(worker).securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: false,
      capabilities: { drop: ["ALL"] },
    });
    // The container's command and image stay the operator's.
    expect(trainfleet(worker).command).toBeUndefined();
    expect(trainfleet(worker).image).toBe("trainfleet:test");
  });

  it("gives a container or init container it adds what restricted asks of each container, under the container's own settings", () => {
    const pods = podsOf({
      parameterServers: {
        replicas: 1,
        template: {
          spec: {
            initContainers: [{ name: "warm", image: "busybox", securityContext: { runAsUser: 2000 } }],
            containers: [{ name: "exporter", image: "exporter", securityContext: { capabilities: { add: ["NET_BIND_SERVICE"] } } }],
          },
        },
      },
    });
    const shard = pods["tpl-ps-0"]!;
    expect(shard.spec!.initContainers).toEqual([
      {
        name: "warm",
        image: "busybox",
        securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] }, runAsUser: 2000 },
      },
    ]);
    expect(shard.spec!.containers.map((container) => container.name)).toEqual(["trainfleet", "exporter"]);
    expect(shard.spec!.containers[1]!.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"], add: ["NET_BIND_SERVICE"] },
    });
  });

  it("colocated shards have no pods: the workers' template is theirs", () => {
    const pods = podsOf({ parameterServers: { placement: "colocated", template: { spec: { nodeSelector: { pool: "ps" } } } } }, true);
    expect(Object.keys(pods).sort()).toEqual(["tpl-coordinator", "tpl-worker-0"]);
    for (const pod of Object.values(pods)) expect(pod.spec!.nodeSelector).toBeUndefined();
  });
});
