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
 *   a pod's host name would be.
 * The operator reaches a coordinator's status API through its Service too: `coordinatorUrl(job)`
 * is the local forwarder of `<job>-coordinator.<ns>.svc:7080`, for Operator.start's option.
 *
 * It is the scheduler as well: every pod of the namespace runs as soon as it is seen (nodeName,
 * schedulerName and gang scheduling are not looked at). Not done: images, volumes, resources,
 * probes (a pod is Ready as soon as it runs), restarts (every pod here has restartPolicy Never),
 * envFrom/configMap/secret env (such a pod stays Pending with CreateContainerConfigError, as a
 * kubelet leaves it), and a terminating pod is not deleted by the kubelet when it stops (the
 * in-process server deletes pods at once, as with no kubelet).
 */

import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import type { AddressInfo, Server, Socket } from "node:net";
import { connect, createServer } from "node:net";
import { constants } from "node:os";
import type { Informer, KubeConfig, ObjectCache, V1EnvVar, V1Pod, V1Service } from "@kubernetes/client-node";
import { CoreV1Api, makeInformer, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import type { TrainingJob } from "@trainfleet/k8s";
import { coordinatorEndpoint } from "@trainfleet/k8s";
import { cliMain } from "../../fleet/run-fleet.js";

const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
const podIP = "127.0.0.1";
/** Log lines kept per process (the newest). */
const keptLines = 2000;

export interface ProcessKubeletOptions {
  namespace: string;
  /** The image's environment: under every container's own env (which wins). */
  env?: Record<string, string>;
  /** The longest wait from SIGTERM to SIGKILL (else the pod's terminationGracePeriodSeconds). Default 10 s. */
  maxGraceMs?: number;
}

export interface PodExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** What the pod status says: the exit code, or 128 + the signal's number. */
  exitCode: number;
}

/** One pod's container: its process, ports and output. */
export class PodProcess {
  readonly lines: string[] = [];
  /** Container port -> the host port it really listens on. */
  readonly ports = new Map<number, number>();
  child: ChildProcess | undefined;
  /** Why the container could not start (it never will; `exited` then says exit code -1). */
  error: string | undefined;
  exit: PodExit | undefined;
  /** The pod was deleted, or is being: it gets no more status writes once it is gone. */
  terminating = false;
  deleted = false;
  /** SIGTERM sent by this kubelet (the pod was deleted). */
  terminatedAt: number | undefined;
  readonly exited: Promise<PodExit>;
  #resolveExit!: (exit: PodExit) => void;
  #killTimer: NodeJS.Timeout | undefined;
  /** Status writes of this pod, in order. */
  writes: Promise<void> = Promise.resolve();

  constructor(readonly pod: V1Pod) {
    this.exited = new Promise((resolve) => (this.#resolveExit = resolve));
  }

  get name(): string {
    return this.pod.metadata!.name!;
  }

  get uid(): string {
    return this.pod.metadata!.uid!;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.exit === undefined;
  }

  recordExit(exit: PodExit): void {
    clearTimeout(this.#killTimer);
    this.exit = exit;
    this.#resolveExit(exit);
  }

  /** SIGTERM now, SIGKILL after `graceMs` if it still runs. */
  terminate(graceMs: number): void {
    if (!this.running || this.terminatedAt !== undefined) return;
    this.terminatedAt = Date.now();
    this.child!.kill("SIGTERM");
    this.#killTimer = setTimeout(() => this.child!.kill("SIGKILL"), graceMs);
  }

  /** Its last log lines, for failure messages. */
  output(lines = 30): string {
    const state =
      this.error ??
      (this.exit === undefined
        ? `running (pid ${this.pid})`
        : `exited ${this.exit.exitCode}${this.exit.signal ? ` (${this.exit.signal})` : ""}`);
    return `--- pod ${this.name} (uid ${this.uid.slice(0, 8)}): ${state}\n${this.lines.slice(-lines).join("\n")}`;
  }
}

/** A Service port as a local TCP listener (kube-proxy): each connection goes to a running pod the Service selects. */
interface ServiceProxy {
  server: Server;
  port: number;
  sockets: Set<Socket>;
}

export class ProcessKubelet {
  readonly #core: CoreV1Api;
  readonly #pods: Informer<V1Pod> & ObjectCache<V1Pod>;
  readonly #services: Informer<V1Service> & ObjectCache<V1Service>;
  /** Every pod this kubelet took on, oldest first (one whose container could not start has no child). */
  readonly processes: PodProcess[] = [];
  readonly #byUid = new Map<string, PodProcess>();
  readonly #proxies = new Map<string, Promise<ServiceProxy>>();
  /** The forwarders that listen already, by `SERVICE:PORT`. */
  readonly #listening = new Map<string, ServiceProxy>();
  /** What went wrong in the kubelet itself (a status write that failed): tests expect none. */
  readonly errors: string[] = [];
  #closed = false;
  #restartTimers = new Set<NodeJS.Timeout>();

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
    const service = this.#serviceRef(address);
    if (service === undefined) throw new Error(`${address} is not a Service address in namespace ${this.options.namespace}`);
    return `${podIP}:${(await this.#proxy(service.name, service.port)).port}`;
  }

  /**
   * The base URL of a TrainingJob's coordinator status API, through its Service (as the operator
   * reaches it in a cluster): for Operator.start's coordinatorUrl, which must answer at once.
   * Before the Service's forwarder listens (the Service was just made) it is an address that
   * refuses connections, as a Service name that does not resolve yet would fail.
   */
  coordinatorUrl(job: TrainingJob): string {
    const address = coordinatorEndpoint(job);
    const service = this.#serviceRef(address)!;
    const proxy = this.#listening.get(`${service.name}:${service.port}`);
    if (proxy === undefined) {
      this.#proxy(service.name, service.port).catch((error: unknown) => this.errors.push(`forwarder of ${address}: ${String(error)}`));
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
      this.#proxy(service.metadata!.name!, port.port).catch((error: unknown) =>
        this.errors.push(`forwarder of ${service.metadata?.name}:${port.port}: ${String(error)}`),
      );
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
      env = await this.#environment(process, container.env ?? []);
    } catch (error) {
      process.error = error instanceof Error ? error.message : String(error);
      process.recordExit({ code: null, signal: null, exitCode: -1 });
      this.#write(process, {
        phase: "Pending",
        conditions: [{ type: "PodScheduled", status: "True", lastTransitionTime: new Date() }],
        containerStatuses: [
          {
            name: container?.name ?? "",
            image: container?.image ?? "",
            imageID: "",
            ready: false,
            restartCount: 0,
            state: { waiting: { reason: "CreateContainerConfigError", message: process.error } },
          },
        ],
      });
      return;
    }
    // Deleted while its env was being made: it never starts.
    if (process.terminating || this.#closed) {
      process.recordExit({ code: null, signal: null, exitCode: -1 });
      return;
    }
    const child = spawn(globalThis.process.execPath, [cliMain, ...(container.args ?? [])], { env, stdio: ["ignore", "pipe", "pipe"] });
    process.child = child;
    for (const stream of [child.stdout, child.stderr]) {
      let pending = "";
      stream.on("data", (chunk: Buffer) => {
        pending += chunk.toString();
        const complete = pending.split("\n");
        pending = complete.pop()!;
        process.lines.push(...complete);
        if (process.lines.length > keptLines) process.lines.splice(0, process.lines.length - keptLines);
      });
      stream.on("end", () => pending !== "" && process.lines.push(pending));
    }
    const startedAt = new Date();
    // "close", not "exit": by then its last words are in `lines`.
    child.on("close", (code, signal) => {
      const exitCode = code ?? 128 + (signal === null ? 0 : (constants.signals[signal] ?? 0));
      process.recordExit({ code, signal, exitCode });
      const finishedAt = new Date();
      this.#write(process, {
        phase: exitCode === 0 ? "Succeeded" : "Failed",
        conditions: conditions(false),
        containerStatuses: [
          {
            name: container.name,
            image: container.image ?? "",
            imageID: "",
            ready: false,
            started: false,
            restartCount: 0,
            state: {
              terminated: {
                exitCode,
                ...(signal === null ? {} : { signal: constants.signals[signal] }),
                reason: exitCode === 0 ? "Completed" : "Error",
                startedAt,
                finishedAt,
              },
            },
          },
        ],
      });
    });
    child.on("error", (error) => process.lines.push(`kubelet: spawn failed: ${error.message}`));
    this.#write(process, {
      phase: "Running",
      podIP,
      podIPs: [{ ip: podIP }],
      hostIP: podIP,
      startTime: startedAt,
      conditions: conditions(true),
      containerStatuses: [
        {
          name: container.name,
          image: container.image ?? "",
          imageID: "",
          ready: true,
          started: true,
          restartCount: 0,
          state: { running: { startedAt } },
        },
      ],
    });
  }

  /** The container's environment as a kubelet makes it, with the rewrites this one host needs. */
  async #environment(process: PodProcess, vars: readonly V1EnvVar[]): Promise<Record<string, string>> {
    const { pod } = process;
    const env: Record<string, string> = {
      PATH: globalThis.process.env.PATH ?? "/usr/bin:/bin",
      HOME: globalThis.process.env.HOME ?? "/",
      HOSTNAME: pod.metadata!.name!,
      TRAINFLEET_HOST: pod.metadata!.name!,
      ...this.options.env,
    };
    // $(VAR) refers to the container's own variables defined before it (and the service variables, not made here).
    const defined = new Map<string, string>();
    for (const variable of vars) {
      let value: string;
      if (variable.valueFrom !== undefined) {
        const fieldPath = variable.valueFrom.fieldRef?.fieldPath;
        if (fieldPath === undefined) throw new Error(`env ${variable.name}: only valueFrom.fieldRef is supported here`);
        value = fieldValue(pod, fieldPath);
      } else value = expand(variable.value ?? "", defined);
      defined.set(variable.name, value);
    }
    for (const [name, value] of defined) env[name] = await this.#rewrite(process, name, value);
    return env;
  }

  /** A listen address binds a free port on 127.0.0.1; a Service address goes through its forwarder. */
  async #rewrite(process: PodProcess, name: string, value: string): Promise<string> {
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
    if (this.#serviceRef(value) !== undefined) return await this.serviceAddress(value);
    return value;
  }

  #serviceRef(address: string): { name: string; port: number } | undefined {
    const split = splitHostPort(address);
    if (split === undefined) return undefined;
    const [name, ...domain] = split.host.split(".");
    const label = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
    if (name === undefined || !label.test(name) || name === "localhost") return undefined;
    const suffixes = [
      [],
      [this.options.namespace],
      [this.options.namespace, "svc"],
      [this.options.namespace, "svc", "cluster", "local"],
    ].map((parts) => parts.join("."));
    if (!suffixes.includes(domain.join("."))) return undefined;
    return { name, port: split.port };
  }

  /** The forwarder of a Service port, made on first use (the Service need not exist yet). */
  #proxy(service: string, port: number): Promise<ServiceProxy> {
    const key = `${service}:${port}`;
    const existing = this.#proxies.get(key);
    if (existing !== undefined) return existing;
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      const target = this.#endpoint(service, port);
      if (target === undefined) {
        socket.destroy();
        return;
      }
      const upstream = connect(target, podIP);
      sockets.add(upstream);
      upstream.on("close", () => sockets.delete(upstream));
      socket.pipe(upstream).pipe(socket);
      socket.on("error", () => upstream.destroy());
      upstream.on("error", () => socket.destroy());
      socket.on("close", () => upstream.destroy());
      upstream.on("close", () => socket.destroy());
    });
    const proxy = new Promise<ServiceProxy>((resolve, reject) => {
      server.on("error", reject);
      server.listen(0, podIP, () => {
        const address = server.address() as AddressInfo;
        const listening = { server, port: address.port, sockets };
        this.#listening.set(key, listening);
        resolve(listening);
      });
    });
    this.#proxies.set(key, proxy);
    return proxy;
  }

  /** The host port of a ready pod the Service selects, for the Service port `port`. */
  #endpoint(serviceName: string, port: number): number | undefined {
    const service = this.#services.get(serviceName, this.options.namespace);
    const servicePort = service?.spec?.ports?.find((candidate) => candidate.port === port);
    const selector = service?.spec?.selector;
    if (servicePort === undefined || selector === undefined) return undefined;
    for (const process of this.processes) {
      if (!process.running || process.terminating) continue;
      const labels = process.pod.metadata?.labels ?? {};
      if (!Object.entries(selector).every(([key, value]) => labels[key] === value)) continue;
      const target = servicePort.targetPort ?? port;
      const containerPort =
        typeof target === "number"
          ? target
          : process.pod.spec?.containers[0]?.ports?.find((candidate) => candidate.name === target)?.containerPort;
      const hostPort = containerPort === undefined ? undefined : process.ports.get(containerPort);
      if (hostPort !== undefined) return hostPort;
    }
    return undefined;
  }

  /** Merge-patches the pod's /status, on condition that the pod is still this one (its uid). */
  #write(process: PodProcess, status: Record<string, unknown>): void {
    process.writes = process.writes.then(async () => {
      if (process.deleted || this.#closed) return;
      try {
        await this.#core.patchNamespacedPodStatus(
          { name: process.name, namespace: this.options.namespace, body: { metadata: { uid: process.uid }, status } },
          mergePatch,
        );
      } catch (error) {
        const code = (error as { code?: number }).code;
        // Gone (404), or another pod of the same name now (409): nothing to write to.
        if (code === 404 || code === 409 || this.#closed) return;
        this.errors.push(`${process.name}: status write failed: ${String(error)}`);
      }
    });
  }

  /** SIGKILLs every process, waits for each exit, and stops watching. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#restartTimers) clearTimeout(timer);
    for (const process of this.processes) if (process.running) process.child!.kill("SIGKILL");
    await Promise.all(this.processes.map((process) => (process.child === undefined ? undefined : process.exited)));
    await Promise.all(this.processes.map((process) => process.writes));
    await Promise.all([this.#pods.stop(), this.#services.stop()]);
    const proxies = await Promise.allSettled(this.#proxies.values());
    await Promise.all(
      proxies
        .flatMap((settled) => (settled.status === "fulfilled" ? [settled.value] : []))
        .map(
          ({ server, sockets }) =>
            new Promise<void>((resolve) => {
              for (const socket of sockets) socket.destroy();
              server.close(() => resolve());
            }),
        ),
    );
  }
}

/** A kubelet's pod conditions of a running (ready) or finished pod. */
function conditions(ready: boolean): { type: string; status: string; lastTransitionTime: Date }[] {
  const now = new Date();
  const status = ready ? "True" : "False";
  return [
    { type: "PodScheduled", status: "True", lastTransitionTime: now },
    { type: "Initialized", status: "True", lastTransitionTime: now },
    { type: "ContainersReady", status, lastTransitionTime: now },
    { type: "Ready", status, lastTransitionTime: now },
  ];
}

/** The downward API's fieldRef values, with this host's IP for the pod's and the node's. */
function fieldValue(pod: V1Pod, fieldPath: string): string {
  const keyed = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (keyed !== null) return (keyed[1] === "labels" ? pod.metadata?.labels : pod.metadata?.annotations)?.[keyed[2]!] ?? "";
  switch (fieldPath) {
    case "status.podIP":
    case "status.podIPs":
    case "status.hostIP":
    case "status.hostIPs":
      return podIP;
    case "metadata.name":
      return pod.metadata?.name ?? "";
    case "metadata.namespace":
      return pod.metadata?.namespace ?? "";
    case "metadata.uid":
      return pod.metadata?.uid ?? "";
    case "spec.nodeName":
      return "localhost";
    case "spec.serviceAccountName":
      return pod.spec?.serviceAccountName ?? "default";
    default:
      throw new Error(`fieldRef ${fieldPath} is not supported here`);
  }
}

/**
 * Kubernetes' expansion of an env value: `$(NAME)` is NAME's value when it is defined (else left
 * as written), `$$` is a literal `$`, any other `$` is itself.
 */
export function expand(value: string, defined: ReadonlyMap<string, string>): string {
  let result = "";
  for (let i = 0; i < value.length; i++) {
    const char = value[i]!;
    if (char !== "$" || i + 1 >= value.length) {
      result += char;
      continue;
    }
    const next = value[i + 1];
    if (next === "$") {
      result += "$";
      i++;
    } else if (next === "(") {
      const end = value.indexOf(")", i + 2);
      if (end < 0) {
        result += value.slice(i);
        break;
      }
      const name = value.slice(i + 2, end);
      result += defined.get(name) ?? `$(${name})`;
      i = end;
    } else result += char;
  }
  return result;
}

function splitHostPort(value: string): { host: string; port: number } | undefined {
  const match = /^([^:\s]+):(\d{1,5})$/.exec(value);
  if (match === null) return undefined;
  return { host: match[1]!, port: Number(match[2]) };
}

/** A port nobody listens on now (the OS picked it for a moment). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, podIP, () => {
      const address = server.address();
      server.close(() => (address !== null && typeof address !== "string" ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}
