/**
 * A fake node for the in-process Kubernetes API server: a kubelet (and the bit of kube-proxy a
 * Service needs) that runs each pod of one namespace as a local `trainfleet` process. No real
 * kubelet, container runtime or kube-proxy can run here (nor a real kube-apiserver: see
 * ../kube-api-server/README.md), so this fakes them, written to the real protocol: it sees pods
 * through a client-node informer (list + watch), and writes what a kubelet writes through the pod
 * /status subresource (merge patch, with the pod's uid as precondition): Running with its
 * PodScheduled and Ready conditions when the process is spawned, then Succeeded or Failed with
 * containerStatuses[].state.terminated.exitCode when it exits (128 + the signal's number when a
 * signal ended it, as a container runtime reports). A pod deleted through the API (or given a
 * deletionTimestamp) gets SIGTERM, then SIGKILL after its terminationGracePeriodSeconds (capped
 * by `maxGraceMs`: tests do not wait 60 s).
 *
 * The container runs as the image would: `node cli/dist/main.js` (the image's entrypoint) with
 * the container's args, and its env resolved as a kubelet does (`valueFrom.fieldRef`, `$(VAR)`
 * references to earlier variables, `$$` escapes) over the "image's" env (`env` option). What
 * cannot work with every pod on one host is rewritten, and only that:
 * - the pod IP (status.podIP, status.hostIP) is 127.0.0.1;
 * - every listen address (an env var named *_LISTEN, `HOST:PORT` with a port other than 0) binds
 *   127.0.0.1 on a free port of its own: two shards cannot both bind 7100, and nothing here may
 *   take 7070/7080 from anyone else. The pod's container port -> host port map is kept;
 * - a Service address in an env value (`NAME:PORT`, `NAME.NS`, `NAME.NS.svc[.cluster.local]`)
 *   becomes a local TCP forwarder standing for that Service port (kube-proxy's job): it forwards
 *   each connection to a running pod the Service selects, on the host port of the targetPort.
 *   With no such pod yet (a worker that starts before its coordinator) the connection is closed
 *   at once, as a Service without endpoints refuses it, and the process retries;
 * - TRAINFLEET_HOST (the name a process reports, by default the host name) is the pod name, as
 *   a pod's host name would be;
 * - a `secret` volume is written into a folder of this host (read through the API, as a kubelet
 *   reads it), a `persistentVolumeClaim` volume is the folder the test gave for that claim
 *   (`claims` option; a pod mounting any other claim stays Pending, unscheduled, as with a claim
 *   that does not exist), and an env value under a mount path points into the folder instead;
 * - the termination-log file (/dev/termination-log) is a file of this host, which the container
 *   is pointed at with TRAINFLEET_TERMINATION_MESSAGE_FILE; its content, or with
 *   FallbackToLogsOnError the log's tail of a failed container, becomes
 *   containerStatuses[].state.terminated.message (termination-message.ts).
 * The operator reaches a coordinator's status API through its Service too: `coordinatorUrl(job)`
 * is the local forwarder of `<job>-coordinator.<ns>.svc:7080`, for Operator.start's option.
 *
 * It is the scheduler as well: every pod of the namespace runs as soon as it is seen (nodeName,
 * schedulerName and gang scheduling are not looked at). Not done: images, volumes other than
 * secrets and claims (emptyDir: the process writes this host's /tmp), resources, probes (a pod
 * is Ready as soon as it runs), restarts (every pod here has restartPolicy Never), envFrom/configMap/secret env (such a pod stays Pending with CreateContainerConfigError, as a
 * kubelet leaves it), and a terminating pod is not deleted by the kubelet when it stops (the
 * in-process server deletes pods at once, as with no kubelet).
 *
 * Its parts are in ./process-kubelet/: the pod's process (pod-process.ts), its env
 * (container-env.ts), spawning it (container-spawn.ts), the status written for it (pod-status.ts),
 * the Service forwarders (service-forwarder.ts), secret volumes (secret-volumes.ts), claim
 * volumes (claim-volumes.ts), termination messages (termination-message.ts) and this one host's
 * network (pod-network.ts).
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Informer, KubeConfig, ObjectCache, V1Pod, V1Service } from "@kubernetes/client-node";
import { CoreV1Api, makeInformer } from "@kubernetes/client-node";
import type { TrainingJob } from "@trainfleet/k8s";
import { coordinatorEndpoint } from "@trainfleet/k8s";
import { mountClaimVolumes, Unschedulable } from "./process-kubelet/claim-volumes.js";
import { containerEnvironment } from "./process-kubelet/container-env.js";
import { spawnContainer } from "./process-kubelet/container-spawn.js";
import { freePort, podIP, splitHostPort } from "./process-kubelet/pod-network.js";
import { PodProcess } from "./process-kubelet/pod-process.js";
import { configErrorStatus, PodStatusWriter, runningStatus, terminatedStatus, unschedulableStatus } from "./process-kubelet/pod-status.js";
import type { SecretMounts } from "./process-kubelet/secret-volumes.js";
import { localPath, mountSecretVolumes } from "./process-kubelet/secret-volumes.js";
import { ServiceForwarders, serviceRef } from "./process-kubelet/service-forwarder.js";
import { createTerminationLog, terminationMessage, terminationMessageEnv } from "./process-kubelet/termination-message.js";

// What ProcessKubelet's API hands out, and the env expansion, importable from here as before the split.
export { expand } from "./process-kubelet/container-env.js";
export type { PodExit } from "./process-kubelet/pod-process.js";
export { PodProcess } from "./process-kubelet/pod-process.js";

export interface ProcessKubeletOptions {
  namespace: string;
  /** The image's environment: under every container's own env (which wins). */
  env?: Record<string, string>;
  /** The longest wait from SIGTERM to SIGKILL (else the pod's terminationGracePeriodSeconds). Default 10 s. */
  maxGraceMs?: number;
  /**
   * The namespace's PersistentVolumeClaims, by name, each standing for a folder of this host that
   * every pod mounting the claim shares (claim-volumes.ts). Default none: a pod that mounts a
   * claim stays Pending.
   */
  claims?: Record<string, string>;
}

export class ProcessKubelet {
  readonly #core: CoreV1Api;
  readonly #pods: Informer<V1Pod> & ObjectCache<V1Pod>;
  readonly #services: Informer<V1Service> & ObjectCache<V1Service>;
  /** Every pod this kubelet took on, oldest first (one whose container could not start has no child). */
  readonly processes: PodProcess[] = [];
  readonly #byUid = new Map<string, PodProcess>();
  readonly #forwarders: ServiceForwarders;
  readonly #status: PodStatusWriter;
  /** What went wrong in the kubelet itself (a status write that failed): tests expect none. */
  readonly errors: string[] = [];
  #closed = false;
  #restartTimers = new Set<NodeJS.Timeout>();
  /** Where pods' secret volumes and termination logs are written (removed on close). */
  readonly #volumes = mkdtempSync(join(tmpdir(), "trainfleet-kubelet-"));

  private constructor(
    config: KubeConfig,
    readonly options: ProcessKubeletOptions,
  ) {
    const { namespace } = options;
    this.#core = config.makeApiClient(CoreV1Api);
    this.#pods = makeInformer<V1Pod>(config, `/api/v1/namespaces/${namespace}/pods`, () => this.#core.listNamespacedPod({ namespace }));
    this.#services = makeInformer<V1Service>(config, `/api/v1/namespaces/${namespace}/services`, () =>
      this.#core.listNamespacedService({ namespace }),
    );
    this.#forwarders = new ServiceForwarders((name) => this.#services.get(name, namespace), this.processes);
    this.#status = new PodStatusWriter(this.#core, namespace, () => this.#closed, this.errors);
    this.#pods.on("add", (pod) => this.#observed(pod));
    this.#pods.on("update", (pod) => this.#observed(pod));
    this.#pods.on("delete", (pod) => this.#removed(pod));
    this.#services.on("add", (service) => this.#serviceSeen(service));
    this.#services.on("update", (service) => this.#serviceSeen(service));
    for (const informer of [this.#pods, this.#services] as const) {
      // client-node's informer stops on a watch error: start it again (it resumes from its resourceVersion).
      informer.on("error", () => {
        if (this.#closed) return;
        const timer = setTimeout(() => {
          this.#restartTimers.delete(timer);
          if (!this.#closed) informer.start().catch((error: unknown) => this.errors.push(`informer restart: ${String(error)}`));
        }, 200);
        this.#restartTimers.add(timer);
      });
    }
  }

  /** Starts watching the namespace's pods and Services; pods that exist already start too. */
  static async start(config: KubeConfig, options: ProcessKubeletOptions): Promise<ProcessKubelet> {
    const kubelet = new ProcessKubelet(config, options);
    await kubelet.#services.start();
    await kubelet.#pods.start();
    return kubelet;
  }

  /** The newest process of the pod with this name (pods are made again under the same name). */
  process(name: string): PodProcess | undefined {
    return this.processes.findLast((candidate) => candidate.name === name);
  }

  /** The pid of the newest process of the pod with this name. */
  pid(name: string): number | undefined {
    return this.process(name)?.pid;
  }

  /** How many processes were started for pods of this name. */
  starts(name: string): number {
    return this.processes.filter((candidate) => candidate.name === name && candidate.child !== undefined).length;
  }

  /**
   * The local address (127.0.0.1:PORT) that stands for an in-cluster Service address
   * `NAME[.NS[.svc[.cluster.local]]]:PORT`. Every port of a Service gets its forwarder as soon as
   * the Service is seen, and one that nobody knew of yet is made now.
   */
  async serviceAddress(address: string): Promise<string> {
    const service = serviceRef(address, this.options.namespace);
    if (service === undefined) throw new Error(`${address} is not a Service address in namespace ${this.options.namespace}`);
    return `${podIP}:${(await this.#forwarders.forwarder(service.name, service.port)).port}`;
  }

  /**
   * The base URL of a TrainingJob's coordinator status API, through its Service (as the operator
   * reaches it in a cluster): for Operator.start's coordinatorUrl, which must answer at once.
   * Before the Service's forwarder listens (the Service was just made) it is an address that
   * refuses connections, as a Service name that does not resolve yet would fail.
   */
  coordinatorUrl(job: TrainingJob): string {
    const address = coordinatorEndpoint(job);
    const service = serviceRef(address, this.options.namespace)!;
    const proxy = this.#forwarders.listening(service.name, service.port);
    if (proxy === undefined) {
      this.#forwarders
        .forwarder(service.name, service.port)
        .catch((error: unknown) => this.errors.push(`forwarder of ${address}: ${String(error)}`));
      return `http://${podIP}:1`;
    }
    return `http://${podIP}:${proxy.port}`;
  }

  /** Every process's state and last lines, for failure messages. */
  describe(lines = 15): string {
    return [...this.processes.map((process) => process.output(lines)), ...this.errors.map((error) => `kubelet error: ${error}`)].join("\n");
  }

  #serviceSeen(service: V1Service): void {
    if (this.#closed) return;
    for (const port of service.spec?.ports ?? []) {
      this.#forwarders
        .forwarder(service.metadata!.name!, port.port)
        .catch((error: unknown) => this.errors.push(`forwarder of ${service.metadata?.name}:${port.port}: ${String(error)}`));
    }
  }

  #observed(pod: V1Pod): void {
    if (this.#closed) return;
    const uid = pod.metadata?.uid;
    if (uid === undefined) return;
    const known = this.#byUid.get(uid);
    if (pod.metadata?.deletionTimestamp !== undefined) {
      if (known !== undefined) this.#terminate(known, pod);
      return;
    }
    const phase = pod.status?.phase;
    if (known !== undefined || phase === "Succeeded" || phase === "Failed") return;
    const process = new PodProcess(pod);
    this.#byUid.set(uid, process);
    this.processes.push(process);
    this.#run(process).catch((error: unknown) => this.errors.push(`${process.name}: ${String(error)}`));
  }

  #removed(pod: V1Pod): void {
    const process = this.#byUid.get(pod.metadata?.uid ?? "");
    if (process === undefined) return;
    process.deleted = true;
    this.#terminate(process, pod);
  }

  #terminate(process: PodProcess, pod: V1Pod): void {
    process.terminating = true;
    const graceMs = Math.min((pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000, this.options.maxGraceMs ?? 10_000);
    process.terminate(graceMs);
  }

  async #run(process: PodProcess): Promise<void> {
    const { pod } = process;
    const container = pod.spec?.containers[0];
    let env: Record<string, string>;
    try {
      if (container === undefined || pod.spec!.containers.length !== 1) throw new Error("one container per pod is supported");
      if (container.command !== undefined) throw new Error("the image's entrypoint cannot be replaced here (container.command)");
      if (container.envFrom !== undefined) throw new Error("envFrom is not supported here");
      const claims = mountClaimVolumes(pod, container, this.options.claims ?? {});
      const mounts = new Map([...(await mountSecretVolumes(this.#core, pod, container, this.#volumes)), ...claims]);
      process.terminationLog = createTerminationLog(join(this.#volumes, process.uid));
      // Under the container's own env, as a file the image provides would be.
      const imageEnv = { ...this.options.env, [terminationMessageEnv]: process.terminationLog };
      env = await containerEnvironment(pod, container.env ?? [], imageEnv, (name, value) => this.#rewrite(process, name, value, mounts));
    } catch (error) {
      if (error instanceof Unschedulable) {
        // It never starts: the scheduler leaves it Pending, saying why.
        process.error = error.message;
        process.recordExit({ code: null, signal: null, exitCode: -1 });
        this.#status.write(process, unschedulableStatus(error.message));
        return;
      }
      process.error = error instanceof Error ? error.message : String(error);
      process.recordExit({ code: null, signal: null, exitCode: -1 });
      this.#status.write(process, configErrorStatus(container, process.error));
      return;
    }
    // Deleted while its env was being made: it never starts.
    if (process.terminating || this.#closed) {
      process.recordExit({ code: null, signal: null, exitCode: -1 });
      return;
    }
    const startedAt = spawnContainer(process, container.args ?? [], env, (exit, started) => {
      process.terminationMessage = terminationMessage(container, process.terminationLog, exit.exitCode, process.lines);
      this.#status.write(process, terminatedStatus(container, exit, started, new Date(), process.terminationMessage));
    });
    this.#status.write(process, runningStatus(container, startedAt));
  }

  /** A listen address binds a free port on 127.0.0.1; a Service address goes through its forwarder; a volume's path is its local folder's. */
  async #rewrite(process: PodProcess, name: string, value: string, mounts: SecretMounts): Promise<string> {
    const local = localPath(value, mounts);
    if (local !== value) return local;
    const split = splitHostPort(value);
    if (name.endsWith("_LISTEN") && split !== undefined) {
      if (split.port === 0) return `${podIP}:0`;
      let hostPort = process.ports.get(split.port);
      if (hostPort === undefined) {
        hostPort = await freePort();
        process.ports.set(split.port, hostPort);
      }
      return `${podIP}:${hostPort}`;
    }
    if (serviceRef(value, this.options.namespace) !== undefined) return await this.serviceAddress(value);
    return value;
  }

  /** SIGKILLs every process, waits for each exit, and stops watching. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#restartTimers) clearTimeout(timer);
    for (const process of this.processes) if (process.running) process.child!.kill("SIGKILL");
    await Promise.all(this.processes.map((process) => (process.child === undefined ? undefined : process.exited)));
    await Promise.all(this.processes.map((process) => process.writes));
    await Promise.all([this.#pods.stop(), this.#services.stop()]);
    await this.#forwarders.close();
    rmSync(this.#volumes, { recursive: true, force: true });
  }
}
