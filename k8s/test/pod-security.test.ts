/**
 * Every pod the operator makes passes the Pod Security "restricted" profile (as
 * testing/src/k8s/pod-security-standards.ts checks it, a stand-in for the PodSecurity admission
 * of a namespace that enforces it) and kubernetes-models' Pod schema, for every combination of
 * what changes a pod: placement, a checkpoints claim, a storage claim, an output claim, a credentials Secret,
 * a worker template (with a sidecar, a volume and its own securityContext), plaintext, and gang
 * admission by a gang scheduler.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { podSecurityViolations } from "@trainfleet/testing/k8s/pod-security-standards";
import { Pod } from "kubernetes-models/v1";
import { describe, expect, it } from "vitest";
import { reconcile } from "../src/reconcile.js";
import type { PodTemplate, TrainingJobSpec } from "../src/training-job.js";
import { observed, reconcileOptions, trainingJob } from "./builders.js";

const workerTemplate: PodTemplate = {
  metadata: { labels: { team: "vision" } },
  spec: {
    nodeSelector: { "nvidia.com/gpu.present": "true" },
    securityContext: { runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000 },
    volumes: [{ name: "cache", emptyDir: {} }],
    containers: [
      { name: "trainfleet", volumeMounts: [{ name: "cache", mountPath: "/cache" }] },
      { name: "log-shipper", image: "fluent-bit:3", volumeMounts: [{ name: "cache", mountPath: "/cache", readOnly: true }] },
    ],
  },
};

/** What can change the pods of a job, each on or off. */
const variations: ReadonlyArray<readonly [name: string, spec: (colocated: boolean) => Partial<TrainingJobSpec>]> = [
  ["checkpoints", () => ({ checkpoints: { claimName: "ckpt", everySteps: 100 } })],
  ["storage", () => ({ storage: { persistentVolumeClaim: { claimName: "files" }, mountPath: "/mnt/files" } })],
  // The checkpoints' claim: its own volume alone, one volume mounted twice beside checkpoints.
  ["output", () => ({ output: { persistentVolumeClaim: { claimName: "ckpt" }, path: "models/pss" } })],
  ["credentialsSecret", () => ({ credentialsSecret: "s3-credentials" })],
  ["worker template", () => ({})],
  ["insecure", () => ({ security: { insecure: true } })],
  ["gang", () => ({ scheduling: { gang: { enabled: true }, schedulerName: "volcano" } })],
];

function jobWith(colocated: boolean, on: ReadonlySet<string>) {
  const job = trainingJob("ml", "pss").replicas(2).shards(2);
  if (colocated) job.colocated();
  for (const [name, spec] of variations) if (on.has(name)) job.spec(spec(colocated));
  if (on.has("worker template"))
    job.spec({ workers: { replicas: 2, template: workerTemplate }, ...(colocated ? {} : { parameterServers: { replicas: 2 } }) });
  return job;
}

/** Every subset of the variations. */
function subsets(): Array<Set<string>> {
  const names = variations.map(([name]) => name);
  return Array.from({ length: 2 ** names.length }, (_, mask) => new Set(names.filter((_, bit) => (mask >> bit) & 1)));
}

describe("the operator's pods under Pod Security restricted", () => {
  it("every pod of every kind of job passes restricted and is a valid Pod", () => {
    const problems: string[] = [];
    let checked = 0;
    for (const colocated of [false, true]) {
      for (const on of subsets()) {
        const plan = reconcile(observed(jobWith(colocated, on)).obj(), reconcileOptions({ podGroupApis: ["volcano"] }));
        const pods = plan.create.filter((object) => object.kind === "Pod") as V1Pod[];
        expect(pods.length).toBe(colocated ? 3 : 5);
        const job = `${colocated ? "colocated" : "dedicated"} [${[...on].join(", ")}]`;
        for (const pod of pods) {
          checked++;
          for (const violation of podSecurityViolations(pod, "restricted"))
            problems.push(`${job} ${pod.metadata!.name}: ${violation.control} at ${violation.path} (${violation.found})`);
          try {
            new Pod(JSON.parse(JSON.stringify(pod)) as never).validate();
          } catch (error) {
            problems.push(`${job} ${pod.metadata!.name}: ${String(error)}`);
          }
        }
      }
    }
    expect(problems).toEqual([]);
    expect(checked).toBe(2 ** variations.length * (5 + 3));
  });

  it("a template's securityContext that breaks the profile is the user's to make: the checker names it", () => {
    const job = trainingJob("ml", "root").spec({
      workers: { replicas: 1, template: { spec: { securityContext: { runAsUser: 0 } } } },
    });
    const plan = reconcile(observed(job).obj(), reconcileOptions());
    const worker = (plan.create as V1Pod[]).find((object) => object.metadata?.name === "root-worker-0")!;
    expect(podSecurityViolations(worker, "restricted").map((violation) => [violation.control, violation.path])).toEqual([
      ["Running as Non-root user", "spec.securityContext.runAsUser"],
    ]);
  });
});
