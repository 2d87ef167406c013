/** `trainfleet worker`: one data-parallel worker. */
import { defaultDataDirs, runWorker } from "@trainfleet/worker";
import type { BackendChoice } from "@trainfleet/worker";
import type { Command } from "../command.js";
import { requireString } from "../command.js";
import { commonFlags, coordinatorAddressFlag } from "../common-flags.js";

export const backendFlag = {
  backend: {
    kind: "string",
    choices: ["auto", "tensorflow", "wasm", "cpu"],
    default: "auto",
    env: "TRAINFLEET_BACKEND",
    help: "TensorFlow.js compute backend. auto tries @tensorflow/tfjs-node-gpu, then @tensorflow/tfjs-node (where installed), then wasm, then cpu.",
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
  summary: "Runs one worker: it registers with the coordinator, computes the gradient of its slice of every global batch with TensorFlow.js, pushes it to the parameter-server shards, and exits 0 when the job ends.",
  flags: { ...coordinatorAddressFlag, ...backendFlag, ...dataDirFlag, ...commonFlags },
  async run({ values, logger, signal, env }) {
    await runWorker({
      coordinator: requireString(values, "coordinator"),
      host: values.host as string,
      backend: values.backend as BackendChoice,
      dataDirs: dataDirs(values["data-dir"] as string | undefined, env),
      logger,
      signal,
    });
    return 0;
  },
};

export function dataDirs(dataDir: string | undefined, env: Readonly<Record<string, string | undefined>>): string[] {
  return defaultDataDirs({ dataDir, cacheHome: env.XDG_CACHE_HOME, home: env.HOME });
}
