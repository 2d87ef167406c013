/**
 * The operator under test, for real: @kubernetes/client-node informers and API calls against the
 * in-process Kubernetes API server (no real kube-apiserver can run here), a FakeKubelet writing
 * pod status as a kubelet would, and one ScriptedCoordinator status API per job.
 */

import type { CoreV1Event, KubeConfig, V1Pod } from "@kubernetes/client-node";
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import type { PodGroupApi, TrainingJob, TrainingJobSpec } from "@trainfleet/k8s";
import { group, labels, Operator, plural, version } from "@trainfleet/k8s";
import type { KubeApiServer, ResourceDefinition } from "../kube-api-server/index.js";
import { defaultResources, startKubeApiServer } from "../kube-api-server/index.js";
import { FakeKubelet } from "./fake-kubelet.js";
import { pollUntil, recordingLogger } from "./polling.js";
import { ScriptedCoordinator } from "./scripted-coordinator.js";

export const namespace = "training";
/** The operator's user in the request log (its service account, as a real audit log would name it). */
export const operatorUser = "system:serviceaccount:trainfleet:trainfleet-operator";
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

/** The scheduler-plugins coscheduler's PodGroup, for gang tests. */
export const coschedulingPodGroups: ResourceDefinition = {
  group: "scheduling.x-k8s.io",
  version: "v1alpha1",
  kind: "PodGroup",
  listKind: "PodGroupList",
  plural: "podgroups",
  singular: "podgroup",
  namespaced: true,
  status: true,
  custom: true,
  deleteReturnsObject: true,
};

export interface HarnessOptions {
  podGroupApis?: PodGroupApi[];
  resources?: readonly ResourceDefinition[];
}

export class OperatorHarness {
  readonly config: KubeConfig;
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;
  readonly kubelet: FakeKubelet;
  readonly coordinators = new Map<string, ScriptedCoordinator>();
  readonly logLines: string[] = [];
  operator: Operator | undefined;

  private constructor(
    readonly server: KubeApiServer,
    readonly options: HarnessOptions,
  ) {
    this.config = server.kubeConfig(namespace);
    this.core = this.config.makeApiClient(CoreV1Api);
    this.custom = this.config.makeApiClient(CustomObjectsApi);
    this.kubelet = new FakeKubelet(this.config, namespace);
  }

  static async start(options: HarnessOptions = {}): Promise<OperatorHarness> {
    const server = await startKubeApiServer({ resources: options.resources ?? defaultResources });
    const harness = new OperatorHarness(server, options);
    await harness.startOperator();
    return harness;
  }

  async startOperator(): Promise<Operator> {
    this.operator = await Operator.start({
      kubeConfig: this.server.kubeConfig(namespace, operatorUser),
      logger: recordingLogger(this.logLines),
      podGroupApis: this.options.podGroupApis ?? [],
      statusPollMs: 100,
      finishGraceMs: 300,
      resyncMs: 2000,
      informerBackoff: { initialMs: 50, maxMs: 400 },
      coordinatorUrl: (job) => this.coordinators.get(job.metadata.name)?.url ?? "http://127.0.0.1:1",
    });
    return this.operator;
  }

  async stopOperator(): Promise<void> {
    await this.operator?.stop();
    this.operator = undefined;
  }

  /** Creates a TrainingJob (and the status API its coordinator will serve). */
  async submit(name: string, spec: Partial<TrainingJobSpec> = {}): Promise<ScriptedCoordinator> {
    const coordinator = await ScriptedCoordinator.start(name);
    this.coordinators.set(name, coordinator);
    const body = {
      apiVersion: `${group}/${version}`,
      kind: "TrainingJob",
      metadata: { name, namespace },
      spec: { image: "trainfleet:test", ...spec },
    };
    await this.custom.createNamespacedCustomObject({ group, version, namespace, plural, body });
    return coordinator;
  }

  /**
   * Replaces the job's status API with one that requires the job's tokens, from the Secret the
   * operator made (as the coordinator pod reads them from its mount): the operator must send the
   * read token from then on. Returns the new one.
   */
  async requireTokens(name: string): Promise<ScriptedCoordinator> {
    const secret = await this.waitFor(`Secret ${name}-tokens`, () =>
      this.core.readNamespacedSecret({ name: `${name}-tokens`, namespace }).catch(() => undefined),
    );
    const decode = (key: string) => Buffer.from(secret.data![key]!, "base64").toString("utf8");
    const secured = await ScriptedCoordinator.start(name, { read: decode("read"), control: decode("control") });
    await this.coordinators.get(name)?.close();
    this.coordinators.set(name, secured);
    return secured;
  }

  async job(name: string): Promise<TrainingJob> {
    return (await this.custom.getNamespacedCustomObject({ group, version, namespace, plural, name })) as TrainingJob;
  }

  async patchSpec(name: string, spec: Record<string, unknown>): Promise<void> {
    await this.custom.patchNamespacedCustomObject({ group, version, namespace, plural, name, body: { spec } }, mergePatch);
  }

  /** `kubectl scale tj NAME --replicas=N`: through the scale subresource. */
  async scale(name: string, replicas: number): Promise<void> {
    await this.custom.patchNamespacedCustomObjectScale(
      { group, version, namespace, plural, name, body: { spec: { replicas } } },
      mergePatch,
    );
  }

  async pods(job: string): Promise<V1Pod[]> {
    const list = await this.core.listNamespacedPod({ namespace, labelSelector: `${labels.jobName}=${job}` });
    return list.items.sort((a, b) => (a.metadata!.name! < b.metadata!.name! ? -1 : 1));
  }

  async podNames(job: string): Promise<string[]> {
    return (await this.pods(job)).map((pod) => pod.metadata!.name!);
  }

  async events(job: string): Promise<CoreV1Event[]> {
    const list = await this.core.listNamespacedEvent({ namespace });
    return list.items.filter((event) => event.involvedObject.name === job);
  }

  /** The job's Events once every one of `reasons` is among them (an Event follows the status that records its transition). */
  async eventsWith(job: string, reasons: string[]): Promise<CoreV1Event[]> {
    return this.waitFor(`events ${reasons.join(", ")} of ${job}`, async () => {
      const events = await this.events(job);
      return reasons.every((reason) => events.some((event) => event.reason === reason)) ? events : undefined;
    });
  }

  /** Polls `probe` until it returns something other than undefined or false; a failure shows the operator's warnings. */
  waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
    return pollUntil(what, probe, timeoutMs, () => `operator log:\n${this.logLines.slice(-20).join("\n")}`);
  }

  /** Waits until the job's condition `type` has `status` (and `reason`, when given); returns the job. */
  async waitForCondition(name: string, type: string, status: string, reason?: string, timeoutMs?: number): Promise<TrainingJob> {
    return this.waitFor(
      `${name}: condition ${type}=${status}${reason === undefined ? "" : ` (${reason})`}`,
      async () => {
        const job = await this.job(name);
        const condition = job.status?.conditions?.find((candidate) => candidate.type === type);
        return condition?.status === status && (reason === undefined || condition.reason === reason) ? job : undefined;
      },
      timeoutMs,
    );
  }

  /** Waits for the job's pods to be exactly `names`, then runs the ones not running yet. */
  async waitForPods(job: string, names: string[]): Promise<V1Pod[]> {
    const expected = [...names].sort();
    await this.waitFor(`pods ${expected.join(", ")}`, async () => {
      const pods = (await this.pods(job)).filter((pod) => pod.metadata?.deletionTimestamp === undefined);
      return JSON.stringify(pods.map((pod) => pod.metadata!.name).sort()) === JSON.stringify(expected);
    });
    return this.pods(job);
  }

  async close(): Promise<void> {
    await this.stopOperator();
    for (const coordinator of this.coordinators.values()) await coordinator.close();
    await this.server.close();
  }
}

/** The pods a job with `shards` shards and `workers` workers has. */
export function podsOf(job: string, shards: number, workers: number): string[] {
  return [
    `${job}-coordinator`,
    ...Array.from({ length: shards }, (_, i) => `${job}-ps-${i}`),
    ...Array.from({ length: workers }, (_, i) => `${job}-worker-${i}`),
  ];
}
