/** `trainfleet worker`: one data-parallel worker. */

import type { BackendChoice, WorkerOptions } from "@trainfleet/worker";
// TensorFlow.js is loaded only by the worker role (run(), below): the other roles start faster without it.
import type { Command } from "../command.js";
import { requireString } from "../command.js";
import { commonFlags, coordinatorAddressFlag } from "../common-flags.js";
import { colocatedShardSecurity, colocatedTlsFlags, tlsFlags, transportSecurity } from "../tls-flags.js";
import { metricsListenFlag } from "./ps.js";

export const backendFlag = {
  backend: {
    kind: "string",
    choices: ["auto", "tensorflow", "webgpu", "wasm", "cpu"],
    default: "auto",
    env: "TRAINFLEET_BACKEND",
    help: "TensorFlow.js compute backend. auto tries the GPU first (@tensorflow/tfjs-node-gpu where installed, then webgpu where Dawn finds a GPU adapter), then @tensorflow/tfjs-node (where installed), then wasm, then cpu, and logs one line saying why no GPU backend ran. webgpu today refuses to run the worker's step under Node (tf.js cannot read a GPU tensor synchronously there).",
  },
} as const;

export const dataDirFlag = {
  "data-dir": {
    kind: "string",
    env: "TRAINFLEET_DATA_DIR",
    help: "Folder with the Fashion-MNIST IDX files, searched before /usr/share/datasets/fashion-mnist and ~/.cache/trainfleet/fashion-mnist (npm run fetch-data fills the latter).",
  },
} as const;

export const workerCommand: Command = {
  name: "worker",
  usage: "trainfleet worker --coordinator HOST:PORT [flags]",
  summary:
    "Runs one worker: it registers with the coordinator, computes the gradient of its slice of every global batch with TensorFlow.js, pushes it to the parameter-server shards, and exits 0 when the job ends.",
  flags: {
    ...coordinatorAddressFlag,
    ...backendFlag,
    ...dataDirFlag,
    "colocated-shard-index": {
      kind: "integer",
      env: "TRAINFLEET_COLOCATED_SHARD_INDEX",
      help: "Colocated placement: also serve this parameter-server shard from this process (the worker reaches it in memory, the others over TCP).",
    },
    listen: {
      kind: "string",
      default: "127.0.0.1:0",
      env: "TRAINFLEET_LISTEN",
      help: "With --colocated-shard-index: host:port for the shard's gRPC service; other workers dial this host.",
    },
    ...metricsListenFlag,
    ...tlsFlags,
    ...colocatedTlsFlags,
    ...commonFlags,
  },
  async run({ values, logger, signal, env }) {
    const coordinator = requireString(values, "coordinator");
    const host = values.host as string;
    const shardIndex = values["colocated-shard-index"] as number | undefined;
    // Loaded here, not at the top: every process runs this file's module for its flags, and only a worker needs these.
    const [{ runWorker }, { createLocalShardLink, shardPeer }, { ParameterShard, runShard }] = await Promise.all([
      import("@trainfleet/worker"),
      import("@trainfleet/dataplane"),
      import("@trainfleet/paramserver"),
    ]);
    const security = await transportSecurity(values, logger, { roles: ["worker"] });
    const shardSecurity = await colocatedShardSecurity(
      values,
      security,
      shardIndex === undefined ? undefined : { index: shardIndex, expected: shardPeer(shardIndex) },
      logger,
    );
    const workerDataDirs = await dataDirs(values["data-dir"] as string | undefined, env);
    const worker = (colocatedShard: WorkerOptions["colocatedShard"], workerSignal: AbortSignal) =>
      runWorker({
        coordinator,
        host,
        backend: values.backend as BackendChoice,
        dataDirs: workerDataDirs,
        logger,
        signal: workerSignal,
        colocatedShard,
        security,
      });
    if (shardIndex === undefined) {
      await worker(undefined, signal);
      return 0;
    }
    // Colocated: a shard and a worker in one process, each a member of the job. If either
    // fails, the other is stopped too, so the process never lingers half alive.
    const shard = new ParameterShard();
    const both = new AbortController();
    const onAbort = () => both.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    const stopOther = (error: unknown) => {
      both.abort(error);
      throw error;
    };
    const results = await Promise.allSettled([
      runShard({
        coordinator,
        listen: values.listen as string,
        shardIndex,
        host,
        logger,
        signal: both.signal,
        shard,
        metricsListen: values["metrics-listen"] as string | undefined,
        security: shardSecurity,
      }).catch(stopOther),
      worker({ index: shardIndex, link: (jobId) => createLocalShardLink(shard, jobId) }, both.signal).catch(stopOther),
    ]);
    signal.removeEventListener("abort", onAbort);
    const failed = results.find((r) => r.status === "rejected");
    if (failed !== undefined) throw failed.reason;
    return 0;
  },
};

export async function dataDirs(dataDir: string | undefined, env: Readonly<Record<string, string | undefined>>): Promise<string[]> {
  const { defaultDataDirs } = await import("@trainfleet/worker/dataset");
  return defaultDataDirs({ dataDir, cacheHome: env.XDG_CACHE_HOME, home: env.HOME });
}
