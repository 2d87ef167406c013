/**
 * Finding the Kubernetes API server as kubectl does, and calling it for TrainingJobs.
 *
 * Where the configuration comes from, first match wins (kubectl's order):
 *   1. `--kubeconfig FILE` (it must exist; KUBECONFIG and ~/.kube/config are then not read);
 *   2. $KUBECONFIG, a list of files separated by ':' (';' on Windows): files that do not exist are
 *      skipped, the rest are merged as kubectl merges them: the first file to define a cluster,
 *      user or context of a given name wins, and so does the first file to set current-context;
 *   3. ~/.kube/config ($HOME/.kube/config);
 *   4. inside a pod: the service account (KUBERNETES_SERVICE_HOST/PORT and the token file), the
 *      namespace from $POD_NAMESPACE or the service account's namespace file.
 * `--context` picks a context (default: current-context); the namespace is `--namespace`, else
 * the context's, else "default".
 *
 * client-node's own `KubeConfig.loadFromDefault()` is not used, because it does not do what
 * kubectl does: with KUBECONFIG it takes current-context from the *last* file that sets it,
 * throws "Duplicate cluster: NAME" when two files define the same name, and throws ENOENT on a
 * listed file that does not exist; with no configuration at all it silently falls back to
 * http://localhost:8080. It also refuses plain http:// servers unless the cluster says
 * insecure-skip-tls-verify (kubectl accepts them); here such clusters are marked so, which only
 * picks an http agent. client-node itself is loaded only when a Kubernetes command runs (it
 * takes most of a second to import), so the other commands do not pay for it.
 */
import { readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import type { Cluster, Context, CustomObjectsApi, KubeConfig, User } from "@kubernetes/client-node";
import { group, kind, plural, version } from "@trainfleet/k8s/resource";
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { FlagTable, FlagValue } from "./flags.js";
import { UsageError } from "./flags.js";

/** The flags every Kubernetes command takes. */
export const kubeFlags: FlagTable = {
  kubeconfig: {
    kind: "string",
    help: "The kubeconfig file (KUBECONFIG and ~/.kube/config are then not read). Without it, as kubectl: the files listed in KUBECONFIG (merged, the first to set a value wins), else ~/.kube/config, else the pod's service account.",
  },
  context: { kind: "string", help: "The kubeconfig context to use. Default: the kubeconfig's current-context." },
  namespace: { kind: "string", short: "n", help: "The namespace. Default: the context's namespace, else default." },
};

/** What kubectl calls a TrainingJob in its messages: trainingjob.trainfleet.dev */
export const resourceName = `${kind.toLowerCase()}.${group}`;

/** The service account files of a pod (client-node reads the same paths). */
export const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

export interface KubeTarget {
  config: KubeConfig;
  /** The context in use. */
  context: string;
  /** --namespace, else the context's namespace, else "default". */
  namespace: string;
  /** True when the namespace came from --namespace. */
  namespaceFromFlag: boolean;
  /** The API server's URL. */
  server: string;
  /** Where the configuration came from, for messages ("KUBECONFIG (a.yaml:b.yaml)"). */
  source: string;
  api: CustomObjectsApi;
  /** client-node, loaded. */
  client: typeof import("@kubernetes/client-node");
}

const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Loaded when a Kubernetes command runs, not when the binary starts. */
interface Modules {
  client: typeof import("@kubernetes/client-node");
  yaml: typeof import("yaml");
}

interface RawConfig {
  clusters: Cluster[];
  users: User[];
  contexts: Context[];
  currentContext: string | undefined;
}

function fileExists(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function configError(message: string): TrainfleetError {
  return new TrainfleetError(Code.FAILED_PRECONDITION, message);
}

/** One kubeconfig file, read by client-node (relative certificate paths made absolute to its folder, as kubectl does). */
function readKubeconfig(modules: Modules, file: string): RawConfig {
  const { client, yaml } = modules;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw configError(`cannot read kubeconfig ${file}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = yaml.parse(text);
  } catch (error) {
    throw configError(`kubeconfig ${file} is not valid YAML: ${(error as Error).message}`);
  }
  // An empty file is an empty configuration, as for kubectl.
  if (parsed === null || parsed === undefined) return { clusters: [], users: [], contexts: [], currentContext: undefined };
  if (typeof parsed !== "object" || Array.isArray(parsed))
    throw configError(`kubeconfig ${file} is not a kubeconfig (a YAML mapping with clusters, users and contexts)`);
  const config = new client.KubeConfig();
  try {
    config.loadFromString(text);
  } catch (error) {
    throw configError(`kubeconfig ${file}: ${(error as Error).message}`);
  }
  config.makePathsAbsolute(dirname(file));
  const current = config.getCurrentContext();
  return {
    clusters: config.getClusters(),
    users: config.getUsers(),
    contexts: config.getContexts(),
    currentContext: current === "" ? undefined : current,
  };
}

/** kubectl's merge: the first file to define a name (or current-context) wins; later ones never change it. */
function mergeKubeconfigs(configs: readonly RawConfig[]): RawConfig {
  const merged: RawConfig = { clusters: [], users: [], contexts: [], currentContext: undefined };
  for (const config of configs) {
    for (const cluster of config.clusters) if (!merged.clusters.some((c) => c.name === cluster.name)) merged.clusters.push(cluster);
    for (const user of config.users) if (!merged.users.some((u) => u.name === user.name)) merged.users.push(user);
    for (const context of config.contexts) if (!merged.contexts.some((c) => c.name === context.name)) merged.contexts.push(context);
    merged.currentContext ??= config.currentContext;
  }
  return merged;
}

function inClusterConfig(
  client: Modules["client"],
  env: Readonly<Record<string, string | undefined>>,
): { raw: RawConfig; namespace: string | undefined } {
  const config = new client.KubeConfig();
  config.loadFromCluster();
  let namespace = env["POD_NAMESPACE"] || undefined;
  if (namespace === undefined) {
    try {
      namespace = readFileSync(join(serviceAccountDir, "namespace"), "utf8").trim() || undefined;
    } catch {
      namespace = undefined;
    }
  }
  const contexts = config.getContexts().map((context) => (namespace === undefined ? context : { ...context, namespace }));
  return {
    raw: { clusters: config.getClusters(), users: config.getUsers(), contexts, currentContext: config.getCurrentContext() },
    namespace,
  };
}

/** Where the kubeconfig comes from, as kubectl looks: the files to merge and how to name them in messages. */
function discover(
  modules: Modules,
  values: Record<string, FlagValue>,
  env: Readonly<Record<string, string | undefined>>,
): { raw: RawConfig; source: string } {
  const explicit = values.kubeconfig;
  if (typeof explicit === "string" && explicit !== "") {
    if (!fileExists(explicit)) throw configError(`--kubeconfig ${explicit}: no such file`);
    return { raw: readKubeconfig(modules, explicit), source: `--kubeconfig ${explicit}` };
  }
  const list = env["KUBECONFIG"];
  if (list !== undefined && list !== "") {
    const files = list.split(delimiter).filter((file) => file !== "");
    const present = files.filter(fileExists);
    const source = `KUBECONFIG (${files.join(delimiter)})`;
    if (present.length === 0) {
      throw configError(
        `no kubeconfig found: KUBECONFIG names ${files.join(", ")}, and none of them exists. Point KUBECONFIG at your cluster's kubeconfig, or pass --kubeconfig FILE`,
      );
    }
    return { raw: mergeKubeconfigs(present.map((file) => readKubeconfig(modules, file))), source };
  }
  const home = env["HOME"] || homedir();
  const homeConfig = join(home, ".kube", "config");
  if (fileExists(homeConfig)) return { raw: readKubeconfig(modules, homeConfig), source: homeConfig };
  const host = env["KUBERNETES_SERVICE_HOST"];
  const port = env["KUBERNETES_SERVICE_PORT"];
  if (host && port && fileExists(join(serviceAccountDir, "token"))) {
    return { raw: inClusterConfig(modules.client, env).raw, source: "the pod's service account" };
  }
  throw configError(
    `no Kubernetes configuration found: --kubeconfig is not given, KUBECONFIG is not set, ${homeConfig} does not exist, and this is not a pod with a service account. ` +
      `Pass --kubeconfig FILE, set KUBECONFIG to your cluster's kubeconfig, or put it at ${homeConfig} (kubectl uses the same places)`,
  );
}

function names(items: readonly { name: string }[]): string {
  return items.length === 0 ? "none" : items.map((item) => item.name).join(", ");
}

/** The configuration, context, namespace and API client the Kubernetes commands use. */
export async function connect(values: Record<string, FlagValue>, env: Readonly<Record<string, string | undefined>>): Promise<KubeTarget> {
  const namespaceFlag = values.namespace;
  if (typeof namespaceFlag === "string" && !dnsLabel.test(namespaceFlag)) {
    throw new UsageError(
      `--namespace: "${namespaceFlag}" is not a namespace name (a DNS label: lower-case letters, digits and '-', 1-63 characters, starting and ending with a letter or digit)`,
    );
  }
  const [client, yaml] = await Promise.all([import("@kubernetes/client-node"), import("yaml")]);
  const { raw, source } = discover({ client, yaml }, values, env);
  if (raw.contexts.length === 0) {
    throw configError(
      `${source} defines no contexts: add one (kubectl config set-context NAME --cluster=CLUSTER --user=USER), or point --kubeconfig or KUBECONFIG at a kubeconfig that has one`,
    );
  }
  const flagContext = typeof values.context === "string" && values.context !== "" ? values.context : undefined;
  const contextName = flagContext ?? raw.currentContext;
  if (contextName === undefined) {
    throw configError(
      `${source} sets no current-context: pass --context NAME (defined: ${names(raw.contexts)}), or choose one with kubectl config use-context NAME`,
    );
  }
  const context = raw.contexts.find((candidate) => candidate.name === contextName);
  if (context === undefined) {
    const asked = flagContext !== undefined ? `--context ${contextName}` : `current-context "${contextName}"`;
    throw configError(`${asked}: no such context in ${source} (defined: ${names(raw.contexts)}); pass --context with one of those`);
  }
  const cluster = raw.clusters.find((candidate) => candidate.name === context.cluster);
  if (cluster === undefined) {
    throw configError(
      `context "${contextName}" names cluster "${context.cluster}", which ${source} does not define (defined: ${names(raw.clusters)})`,
    );
  }
  if (context.user !== undefined && context.user !== "" && !raw.users.some((user) => user.name === context.user)) {
    throw configError(
      `context "${contextName}" names user "${context.user}", which ${source} does not define (defined: ${names(raw.users)})`,
    );
  }
  // kubectl talks plain http to an http:// server; client-node only with skipTLSVerify (which then only picks an http agent).
  const clusters = raw.clusters.map((candidate) =>
    candidate.server.startsWith("http:") ? { ...candidate, skipTLSVerify: true } : candidate,
  );
  const config = new client.KubeConfig();
  config.loadFromOptions({ clusters, users: raw.users, contexts: raw.contexts, currentContext: contextName });
  const namespace = typeof namespaceFlag === "string" ? namespaceFlag : context.namespace || "default";
  return {
    config,
    context: contextName,
    namespace,
    namespaceFromFlag: typeof namespaceFlag === "string",
    server: cluster.server,
    source,
    api: config.makeApiClient(client.CustomObjectsApi),
    client,
  };
}

/** An error answer of the API server, with its HTTP status and Status reason. */
export class KubeApiError extends TrainfleetError {
  readonly httpStatus: number;
  /** The Status's reason (NotFound, AlreadyExists, Invalid, ...), when it sent one. */
  readonly reason: string | undefined;
  /** The Status's message, or the body as text. */
  readonly serverMessage: string;

  constructor(code: Code, message: string, httpStatus: number, reason: string | undefined, serverMessage: string, cause: unknown) {
    super(code, message, { cause });
    this.httpStatus = httpStatus;
    this.reason = reason;
    this.serverMessage = serverMessage;
  }
}

function codeOfHttp(status: number, reason: string | undefined): Code {
  switch (status) {
    case 400:
    case 415:
    case 422:
      return Code.INVALID_ARGUMENT;
    case 401:
      return Code.UNAUTHENTICATED;
    case 403:
      return Code.PERMISSION_DENIED;
    case 404:
      return Code.NOT_FOUND;
    case 409:
      return reason === "AlreadyExists" ? Code.ALREADY_EXISTS : Code.ABORTED;
    case 429:
      return Code.RESOURCE_EXHAUSTED;
    case 503:
      return Code.UNAVAILABLE;
    case 504:
      return Code.DEADLINE_EXCEEDED;
    default:
      return status >= 500 ? Code.INTERNAL : Code.UNKNOWN;
  }
}

/**
 * What a failed call says: `what` ("cannot list trainingjobs in namespace x"), then the server's
 * status code, reason and message, or that the server could not be reached and through which
 * configuration.
 */
export function apiError(target: KubeTarget, what: string, error: unknown): TrainfleetError {
  if (error instanceof TrainfleetError) return error;
  const exception = error as { code?: unknown; body?: unknown };
  if (error instanceof Error && typeof exception.code === "number" && exception.code >= 100) {
    const httpStatus = exception.code;
    const text = typeof exception.body === "string" ? exception.body : "";
    let reason: string | undefined;
    let serverMessage = text.trim();
    try {
      const status = JSON.parse(text) as { kind?: unknown; reason?: unknown; message?: unknown };
      if (typeof status.reason === "string" && status.reason !== "") reason = status.reason;
      if (typeof status.message === "string") serverMessage = status.message;
    } catch {
      // Not a Status: keep the text.
    }
    if (serverMessage === "")
      serverMessage = httpStatus === 401 ? "Unauthorized: check the user's credentials in the kubeconfig" : "(no message)";
    const answered = `the API server at ${target.server} answered ${httpStatus}${reason === undefined ? "" : ` ${reason}`}: ${serverMessage}`;
    return new KubeApiError(codeOfHttp(httpStatus, reason), `${what}: ${answered}`, httpStatus, reason, serverMessage, error);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new TrainfleetError(
    Code.UNAVAILABLE,
    `${what}: cannot reach the API server at ${target.server} (context ${target.context} of ${target.source}): ${message}`,
    { cause: error },
  );
}

export function isApiStatus(error: unknown, httpStatus: number): error is KubeApiError {
  return error instanceof KubeApiError && error.httpStatus === httpStatus;
}

/** The coordinates of the TrainingJob resource for CustomObjectsApi calls. */
export const trainingJobsResource = { group, version, plural } as const;
