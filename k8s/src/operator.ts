/**
 * The trainfleet operator: informers on TrainingJobs and on the pods and Services it made (and,
 * with Kueue, on its Workloads and Kueue's ResourceFlavors) feed a work queue of job keys; each
 * key is reconciled (reconcile.ts) from the informers' caches and the coordinator's status, and
 * the plan is applied with client-node. Every error is retried with a
 * per-job backoff; running jobs are looked at again every statusPollMs.
 *
 * With leader election, every replica keeps its informers' caches (so a standby is ready to take
 * over), but only the holder of the Lease reconciles and writes (leader-election.ts). A leader
 * that loses the Lease stops taking keys at once and `failed()` resolves: its process exits.
 */

import type { KubeConfig, KubernetesListObject, KubernetesObject, V1Pod, V1Service } from "@kubernetes/client-node";
import { CoreV1Api, CustomObjectsApi, makeInformer, NetworkingV1Api } from "@kubernetes/client-node";
import type { TrainfleetError } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import { isStatusCode } from "./api-status.js";
import { applyPlan } from "./apply-plan.js";
import type { CoordinatorReport } from "./coordinator-status.js";
import { fetchCoordinatorStatus } from "./coordinator-status.js";
import { CredentialSecrets } from "./credential-secrets.js";
import type { PodGroupApi } from "./gang.js";
import { podGroupApiFor, podGroupResources } from "./gang.js";
import type { OperatorPeer } from "./job-network-policy.js";
import { KueueInformers } from "./kueue-informers.js";
import { coordinatorName, group, labels, managedSelector, plural, version } from "./names.js";
import type { OperatorServers } from "./operator-health.js";
import { startOperatorServers } from "./operator-health.js";
import type { LeaderElectionOptions } from "./operator-leadership.js";
import { OperatorLeadership } from "./operator-leadership.js";
import { OperatorMetrics } from "./operator-metrics.js";
import { ownedBy } from "./owner.js";
import { coordinatorEndpoint } from "./pod-manifests.js";
import { reconcile } from "./reconcile.js";
import type { InformerBackoff } from "./restarting-informer.js";
import { defaultInformerBackoff, RestartingInformer } from "./restarting-informer.js";
import type { TrainingJob } from "./training-job.js";
import { WorkQueue } from "./work-queue.js";

export interface OperatorOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  /** Namespaces to manage; empty: all. */
  namespaces?: readonly string[];
  podGroupApis?: readonly PodGroupApi[];
  /**
   * Kueue admits the jobs that name a queue (scheduling.queueName), each through a Workload the
   * operator makes (kueue-admission.ts); the operator watches Workloads and ResourceFlavors.
   * Default false: such a job's pods carry the queue label only, for Kueue's pod integration.
   */
  kueue?: boolean;
  /**
   * The image of a job whose spec.image is empty (the chart's jobImage value), while none of its
   * pods is left to say which image it runs. Default: none, such a job fails naming spec.image.
   */
  defaultJobImage?: string;
  /** How often a running job's coordinator is asked for its status. Default 5 s. */
  statusPollMs?: number;
  /** How long shards and workers may take to exit after the coordinator ended the job, before cleanPodPolicy deletes them. Default 30 s. */
  finishGraceMs?: number;
  /** Every job is reconciled at least this often. Default 60 s. */
  resyncMs?: number;
  informerBackoff?: InformerBackoff;
  /** The base URL of a job's coordinator status API. Default: its Service's cluster DNS name. */
  coordinatorUrl?: (job: TrainingJob) => string;
  /** The operator's own pods, which each job's NetworkPolicy lets reach its coordinator's status API. Default: the chart's labels, any namespace. */
  operatorPeer?: OperatorPeer;
  /** Only the holder of this Lease reconciles. Default: none, this operator always reconciles (one replica only). */
  leaderElection?: LeaderElectionOptions;
  /** host:port of the /healthz and /readyz server (port 0: any free one). Default: none. */
  healthListen?: string;
  /** host:port of the /metrics server (port 0: any free one). Default: none. */
  metricsListen?: string;
  now?: () => Date;
}

const retry = { initialMs: 200, maxMs: 30_000 };
/** The container of a job's pod that runs trainfleet (pod-manifests.ts names it; a template's sidecars have other names). */
const trainfleetContainer = "trainfleet";

export class Operator {
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;
  readonly #networking: NetworkingV1Api;
  readonly #secrets: CredentialSecrets;
  readonly #jobs: RestartingInformer<TrainingJob & KubernetesObject>[] = [];
  readonly #pods: RestartingInformer<V1Pod>[] = [];
  readonly #services: RestartingInformer<V1Service>[] = [];
  /** With --kueue: the Workloads and ResourceFlavors. */
  #kueue: KueueInformers | undefined;
  readonly #queue: WorkQueue;
  readonly #failures = new Map<string, number>();
  /** Pods this operator deleted that the informer may still show: never counted twice. */
  readonly #deletedPods = new Set<string>();
  /** The newest status this operator wrote per job, in case the cache is behind it. */
  readonly #written = new Map<string, TrainingJob>();
  #resync: NodeJS.Timeout | undefined;
  readonly #leadership: OperatorLeadership;
  readonly #metrics: OperatorMetrics;
  #servers: OperatorServers = {};
  /** Reconciles done so far (tests wait on it). */
  reconciles = 0;

  private constructor(private readonly options: OperatorOptions) {
    this.#core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.#custom = options.kubeConfig.makeApiClient(CustomObjectsApi);
    this.#networking = options.kubeConfig.makeApiClient(NetworkingV1Api);
    this.#secrets = new CredentialSecrets(this.#core, options.logger);
    this.#queue = new WorkQueue((key) => this.#measuredReconcile(key));
    this.#leadership = new OperatorLeadership({
      kubeConfig: options.kubeConfig,
      logger: options.logger,
      election: options.leaderElection,
      onStartedLeading: () => this.#enqueueAll(),
      // Lost the Lease: no reconcile starts from now on (those running finish).
      onLost: () => {
        clearInterval(this.#resync);
        void this.#queue.stop();
      },
    });
    this.#metrics = new OperatorMetrics({
      queueDepth: () => this.#queue.depth,
      jobPhases: () => this.#jobs.flatMap((informer) => informer.informer.list().map((job) => job.status?.phase)),
      leading: () => this.#leadership.leading,
      leaderTransitions: () => this.#leadership.transitions,
    });
  }

  /**
   * Starts the probe and metrics servers, then the informers; returns once they have listed what
   * they watch. Without leader election it reconciles from the start; with it, once it leads.
   */
  static async start(options: OperatorOptions): Promise<Operator> {
    const operator = new Operator(options);
    try {
      const listen = { health: options.healthListen, metrics: options.metricsListen };
      operator.#servers = await startOperatorServers(listen, operator.#leadership, operator.#metrics, options.logger);
      await operator.#startInformers();
      operator.#leadership.synced();
    } catch (error) {
      await operator.stop();
      throw error;
    }
    return operator;
  }

  /** Whether this replica reconciles now: it leads, or runs without leader election. */
  get leading(): boolean {
    return this.#leadership.leading;
  }

  /** Resolves when this operator can no longer work (it lost its Lease): its process should exit non-zero. Pending while it works. */
  failed(): Promise<TrainfleetError> {
    return this.#leadership.failed();
  }

  /** The /healthz and /readyz server's URL, when one was asked for. */
  get healthUrl(): string | undefined {
    return this.#servers.health?.url;
  }

  /** The /metrics server's URL, when one was asked for. */
  get metricsUrl(): string | undefined {
    return this.#servers.metrics?.url;
  }

  /** A reconcile, timed and counted in the metrics (a failure is one the reconcile retries). */
  async #measuredReconcile(key: string): Promise<void> {
    const failuresBefore = this.#failures.get(key) ?? 0;
    const started = performance.now();
    await this.#reconcileKey(key);
    const failed = (this.#failures.get(key) ?? 0) > failuresBefore;
    this.#metrics.reconciled(failed ? "error" : "success", (performance.now() - started) / 1000);
  }

  #enqueue(key: string): void {
    if (this.#leadership.leading) this.#queue.add(key);
  }

  get informers(): RestartingInformer<KubernetesObject>[] {
    const kueue = this.#kueue?.informers ?? [];
    return [...this.#jobs, ...this.#pods, ...this.#services, ...kueue] as RestartingInformer<KubernetesObject>[];
  }

  async #startInformers(): Promise<void> {
    const { kubeConfig, logger } = this.options;
    const backoff = this.options.informerBackoff ?? defaultInformerBackoff;
    const scopes = this.options.namespaces?.length ? this.options.namespaces : [undefined];
    const enqueueAll = () => this.#enqueueAll();
    for (const namespace of scopes) {
      const prefix = namespace === undefined ? "" : `/namespaces/${namespace}`;
      const jobs = makeInformer<TrainingJob & KubernetesObject>(kubeConfig, `/apis/${group}/${version}${prefix}/${plural}`, () =>
        namespace === undefined
          ? (this.#custom.listClusterCustomObject({ group, version, plural }) as Promise<
              KubernetesListObject<TrainingJob & KubernetesObject>
            >)
          : (this.#custom.listNamespacedCustomObject({ group, version, namespace, plural }) as Promise<
              KubernetesListObject<TrainingJob & KubernetesObject>
            >),
      );
      const pods = makeInformer<V1Pod>(
        kubeConfig,
        `/api/v1${prefix}/pods`,
        () =>
          namespace === undefined
            ? this.#core.listPodForAllNamespaces({ labelSelector: managedSelector })
            : this.#core.listNamespacedPod({ namespace, labelSelector: managedSelector }),
        managedSelector,
      );
      const services = makeInformer<V1Service>(
        kubeConfig,
        `/api/v1${prefix}/services`,
        () =>
          namespace === undefined
            ? this.#core.listServiceForAllNamespaces({ labelSelector: managedSelector })
            : this.#core.listNamespacedService({ namespace, labelSelector: managedSelector }),
        managedSelector,
      );
      const where = namespace ?? "all namespaces";
      for (const verb of ["add", "update", "delete"] as const) {
        jobs.on(verb, (job) => this.#enqueue(keyOf(job.metadata?.namespace, job.metadata?.name)));
        pods.on(verb, (pod) => this.#enqueueOwner(pod));
        services.on(verb, (service) => this.#enqueueOwner(service));
      }
      pods.on("delete", (pod) => this.#deletedPods.delete(pod.metadata?.uid ?? ""));
      this.#jobs.push(new RestartingInformer(`trainingjobs (${where})`, jobs, logger, backoff, enqueueAll));
      this.#pods.push(new RestartingInformer(`pods (${where})`, pods, logger, backoff, enqueueAll));
      this.#services.push(new RestartingInformer(`services (${where})`, services, logger, backoff, enqueueAll));
    }
    const onWorkload = (workload: KubernetesObject) => this.#enqueueOwner(workload);
    const kueueOptions = { kubeConfig, custom: this.#custom, logger, backoff, onWorkload, onAll: enqueueAll };
    if (this.options.kueue === true) this.#kueue = new KueueInformers(scopes, kueueOptions);
    // Pods, Services (and Kueue's objects) first: a job is never reconciled against an empty pod cache.
    const kueue = this.#kueue?.informers ?? [];
    await Promise.all([...this.#pods, ...this.#services, ...kueue].map((informer) => informer.start()));
    await Promise.all(this.#jobs.map((informer) => informer.start()));
    this.#resync = setInterval(enqueueAll, this.options.resyncMs ?? 60_000);
    logger.info({ namespaces: this.options.namespaces ?? [], defaultJobImage: this.options.defaultJobImage ?? null }, "operator started");
  }

  #enqueueAll(): void {
    for (const informer of this.#jobs)
      for (const job of informer.informer.list()) this.#enqueue(keyOf(job.metadata?.namespace, job.metadata?.name));
  }

  #enqueueOwner(object: KubernetesObject): void {
    const job = object.metadata?.labels?.[labels.jobName];
    if (job !== undefined) this.#enqueue(keyOf(object.metadata?.namespace, job));
  }

  #cachedJob(namespace: string, name: string): TrainingJob | undefined {
    for (const informer of this.#jobs) {
      const job = informer.informer.get(name, namespace);
      if (job !== undefined) return job;
    }
    return undefined;
  }

  /** The job as cached, or as this operator last wrote it when the cache has not caught up. */
  #freshestJob(key: string, namespace: string, name: string): TrainingJob | undefined {
    const cached = this.#cachedJob(namespace, name);
    const written = this.#written.get(key);
    if (cached === undefined || written === undefined || written.metadata.uid !== cached.metadata.uid) return cached;
    // resourceVersions are opaque, but one object's are increasing integers on etcd (and here).
    return Number(written.metadata.resourceVersion) > Number(cached.metadata.resourceVersion)
      ? { ...cached, status: written.status ?? {} }
      : cached;
  }

  async #reconcileKey(key: string): Promise<void> {
    const [namespace, name] = key.split("/") as [string, string];
    const stored = this.#freshestJob(key, namespace, name);
    if (stored === undefined) {
      this.#written.delete(key);
      this.#failures.delete(key);
      return;
    }
    try {
      const pods = this.#pods
        .flatMap((informer) => informer.informer.list(namespace))
        .filter((pod) => pod.metadata?.labels?.[labels.jobName] === name && ownedBy(pod, stored))
        .map((pod) => (this.#deletedPods.has(pod.metadata?.uid ?? "") ? withDeletion(pod) : pod));
      const job = withJobImage(stored, pods, this.options.defaultJobImage);
      const service = this.#services
        .flatMap((informer) => informer.informer.list(namespace))
        .find((candidate) => candidate.metadata?.name === coordinatorName(name) && ownedBy(candidate, job));
      const now = this.options.now?.() ?? new Date();
      const plan = reconcile(
        {
          job,
          pods,
          service,
          podGroupExists: await this.#podGroupExists(job),
          coordinator: await this.#coordinatorReport(job, pods),
          ...this.#kueue?.observed(job),
          now,
        },
        {
          podGroupApis: this.options.podGroupApis ?? [],
          kueue: this.options.kueue === true,
          statusPollMs: this.options.statusPollMs ?? 5000,
          finishGraceMs: this.options.finishGraceMs ?? 30_000,
          ...(this.options.operatorPeer === undefined ? {} : { operatorPeer: this.options.operatorPeer }),
        },
      );
      const applied = await applyPlan(plan, job, {
        core: this.#core,
        custom: this.#custom,
        networking: this.#networking,
        secrets: this.#secrets,
        logger: this.options.logger,
        now,
      });
      for (const { uid } of plan.deletePods) this.#deletedPods.add(uid);
      if (applied.written !== undefined) this.#written.set(key, applied.written);
      // A create that may pass by itself (5xx, 429, no answer) is on the job's status already: retried with backoff.
      if (applied.retry !== undefined) throw applied.retry;
      this.#failures.delete(key);
      this.reconciles++;
      if (plan.requeueAfterMs !== undefined && !plan.deleteJob) this.#queue.addAfter(key, plan.requeueAfterMs);
    } catch (error) {
      const failures = (this.#failures.get(key) ?? 0) + 1;
      this.#failures.set(key, failures);
      const delayMs = Math.min(retry.maxMs, retry.initialMs * 2 ** (failures - 1));
      this.options.logger.warn(
        { job: key, error: error instanceof Error ? error.message : String(error), retryInMs: delayMs },
        "reconcile failed; trying again",
      );
      this.#queue.addAfter(key, delayMs);
    }
  }

  async #podGroupExists(job: TrainingJob): Promise<boolean> {
    const api = podGroupApiFor(job, this.options.podGroupApis ?? []);
    if (api === undefined) return false;
    try {
      await this.#custom.getNamespacedCustomObject({
        ...podGroupResources[api],
        namespace: job.metadata.namespace,
        name: job.metadata.name,
      });
      return true;
    } catch (error) {
      if (isStatusCode(error, 404)) return false;
      throw error;
    }
  }

  /** The coordinator is asked only while its pod runs: before, there is nobody to ask; after, its last word was read. */
  async #coordinatorReport(job: TrainingJob, pods: readonly V1Pod[]): Promise<CoordinatorReport | undefined> {
    const pod = pods.find(
      (candidate) => candidate.metadata?.name === coordinatorName(job.metadata.name) && candidate.metadata.deletionTimestamp === undefined,
    );
    if (pod?.status?.phase !== "Running") return undefined;
    const baseUrl = this.options.coordinatorUrl?.(job) ?? `http://${coordinatorEndpoint(job)}`;
    // The job's read token, from the Secret mounted into its coordinator: the status API needs it.
    return fetchCoordinatorStatus(baseUrl, job.metadata.name, 2000, await this.#secrets.readToken(job));
  }

  /**
   * Stops reconciling (waiting for the reconciles in progress), gives the Lease up unless
   * leaderElection.releaseOnStop is false, then stops the informers and servers.
   */
  async stop(): Promise<void> {
    clearInterval(this.#resync);
    await this.#queue.stop();
    await this.#leadership.stop();
    await Promise.all(this.informers.map((informer) => informer.stop()));
    await Promise.all([this.#servers.health?.close(), this.#servers.metrics?.close()]);
    this.options.logger.info({}, "operator stopped");
  }
}

function keyOf(namespace: string | undefined, name: string | undefined): string {
  return `${namespace ?? "default"}/${name ?? ""}`;
}

/**
 * The job as reconciled: one that leaves spec.image out runs the image its pods already run (so a
 * changed default never mixes two images in one job; once suspended, with no pod left, it takes
 * the default of the day, as an image change is allowed then), else the operator's default.
 * The stored spec is never written: it stays as its user wrote it.
 */
function withJobImage(job: TrainingJob, pods: readonly V1Pod[], defaultJobImage: string | undefined): TrainingJob {
  if (job.spec.image) return job;
  const running = pods
    .filter((pod) => pod.metadata?.deletionTimestamp === undefined)
    .map((pod) => pod.spec?.containers.find((container) => container.name === trainfleetContainer)?.image)
    .find((image) => image !== undefined && image !== "");
  const image = running ?? defaultJobImage;
  return image === undefined ? job : { ...job, spec: { ...job.spec, image } };
}

/** A pod this operator already deleted, shown as terminating until the informer sees it go. */
function withDeletion(pod: V1Pod): V1Pod {
  return { ...pod, metadata: { ...pod.metadata, deletionTimestamp: pod.metadata?.deletionTimestamp ?? new Date(0) } };
}
