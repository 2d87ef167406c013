/**
 * `npm run bench:time-to-accuracy`: how long the default job takes to reach its accuracy,
 * start-up included, beside torch DDP and stock tf.js training the same model to theirs.
 *
 * - trainfleet: what `npm start` runs (`node cli/dist/main.js run`, no job flags: the default
 *   job, 2 workers and 2 dedicated shards), timed from spawn to exit; the accuracy is the
 *   coordinator's final evaluation.
 * - torch DDP: 2 processes of Debian's python3-torch, one thread each, gloo, the same model,
 *   Adam, global batch and epochs (bench/torch-ddp-train.py), timed from the spawn of the
 *   first to the exit of the last. With the reference BLAS it refuses: install OpenBLAS.
 * - stock tf.js: one process, a tf.sequential model of the same layers, the same Adam,
 *   `model.fit` with the global batch on the wasm backend, one thread (stock-tfjs-training.ts).
 *
 * The hyperparameters are read from the default JobSpec, so the contenders follow it. Each
 * sitting runs the three one after another, the order rotated by sitting; the table gives
 * each contender's median wall time over the sittings with its range, and its wall time
 * over trainfleet's per sitting. `--quick`: 1 epoch, 1 sitting, a smoke check.
 */

import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { cpus, loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { create } from "@bufbuild/protobuf";
import { JobSpecSchema } from "@trainfleet/proto";
import { resolveJobSpec } from "@trainfleet/spec";
import { median } from "./child.js";
import { finishedJob, parameterCheck, removeJob, startJob } from "./cli-job.js";
import { freePort } from "./free-port.js";
import { spread } from "./spread.js";

const contenderNames = ["trainfleet", "torch", "tfjs"] as const;
type Contender = (typeof contenderNames)[number];
const shortNames: Record<Contender, string> = { trainfleet: "trainfleet", torch: "torch DDP", tfjs: "stock tf.js" };
const labels: Record<Contender, string> = {
  trainfleet: "trainfleet (`npm start`: 2 workers, 2 shards)",
  torch: "torch DDP (gloo, 2 processes x 1 thread)",
  tfjs: "stock tf.js (model.fit, wasm, 1 process)",
};

const { values } = parseArgs({
  options: {
    sittings: { type: "string", default: "3" },
    quick: { type: "boolean", default: false },
    contenders: { type: "string", default: contenderNames.join(",") },
  },
});
const sittings = values.quick ? 1 : Number(values.sittings);
if (!Number.isInteger(sittings) || sittings < 1)
  throw new Error(`--sittings ${values.sittings}: give a whole number of sittings, 1 or more`);
const contenders = values.contenders.split(",").filter(Boolean) as Contender[];
for (const name of contenders)
  if (!contenderNames.includes(name))
    throw new Error(`--contenders: unknown contender "${name}"; choose from ${contenderNames.join(", ")}`);
if (!contenders.includes("trainfleet")) throw new Error("--contenders must include trainfleet: the others are compared with it");

const python = "/usr/bin/python3";
const torchScript = fileURLToPath(new URL("../torch-ddp-train.py", import.meta.url));
const tfjsScript = fileURLToPath(new URL("./stock-tfjs-training.js", import.meta.url));

/** The default job's hyperparameters, which the other contenders copy. */
function defaultHyperparameters() {
  const spec = resolveJobSpec(create(JobSpecSchema, {}));
  const model = spec.model!.kind;
  const optimizer = spec.training!.optimizer!.kind;
  if (model.case !== "mlp" || optimizer.case !== "adam")
    throw new Error(
      `the default job is now ${model.case} with ${optimizer.case}; torch-ddp-train.py and stock-tfjs-training.ts train an MLP with Adam: teach them the new default`,
    );
  return {
    hidden: model.value.hiddenUnits.join(","),
    adam: {
      learningRate: optimizer.value.learningRate,
      beta1: optimizer.value.beta1,
      beta2: optimizer.value.beta2,
      epsilon: optimizer.value.epsilon,
    },
    workers: spec.workers!.replicas,
    batchPerWorker: spec.training!.batchSizePerWorker,
    epochs: values.quick ? 1 : spec.training!.epochs,
    seed: spec.training!.seed,
  };
}
const job = defaultHyperparameters();

/** The Fashion-MNIST folder, fetched as `npm start` fetches it. */
function dataDir(): string {
  const result = spawnSync("bash", [fileURLToPath(new URL("../../scripts/fetch-data.sh", import.meta.url)), "--quiet"], {
    encoding: "utf8",
  });
  if (result.status !== 0) throw new Error(`scripts/fetch-data.sh failed: ${result.stderr}`);
  return result.stdout.trim();
}

/** The BLAS torch computes with; refuses (exits) where torch is missing or runs on the reference BLAS. */
function torchBlas(): { name: string; libraries: string[]; torch: string } {
  const leaveOut = `or leave torch out: --contenders ${contenders.filter((c) => c !== "torch").join(",")}`;
  const probe = spawnSync(python, [torchScript, "--blas"], { encoding: "utf8", env: { ...process.env, OPENBLAS_NUM_THREADS: "1" } });
  if (probe.status !== 0) {
    console.error(
      `time-to-accuracy: torch does not run for ${python} (${probe.stderr.trim().split("\n").at(-1) ?? probe.error?.message}). Install it: \`apt-get install python3-torch libopenblas0-pthread\`, ${leaveOut}`,
    );
    process.exit(2);
  }
  const blas = JSON.parse(probe.stdout) as { name: string; reference: boolean; libraries: string[]; torch: string };
  if (blas.reference) {
    console.error(
      `time-to-accuracy: torch ${blas.torch} computes with the reference BLAS (${blas.libraries.join(", ")}), about 40x slower at matmul than OpenBLAS: the comparison would measure the BLAS, so it is refused. Install OpenBLAS: \`apt-get install libopenblas0-pthread\`, ${leaveOut}`,
    );
    process.exit(2);
  }
  return blas;
}

interface Result {
  wallMs: number;
  testAccuracy: number;
  /** trainfleet only: the trained parameters' sha256, the same in every sitting. */
  parametersSha256?: string;
}

/** Runs `command args` to its exit and parses the last line it printed to stdout as JSON. */
async function timedJson<T>(
  runs: Array<{ command: string; args: string[]; env?: NodeJS.ProcessEnv }>,
  what: string,
): Promise<{ wallMs: number; value: T }> {
  const spawnedAt = performance.now();
  const children = runs.map(({ command, args, env }) =>
    spawn(command, args, { stdio: ["ignore", "pipe", "inherit"], env: env ?? process.env }),
  );
  let output = "";
  children[0]!.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const codes = await Promise.all(children.map(async (child) => ((await once(child, "exit")) as [number | null])[0]));
  const wallMs = performance.now() - spawnedAt;
  if (codes.some((code) => code !== 0)) throw new Error(`${what} exited with ${codes.join(", ")}; its output:\n${output}`);
  return { wallMs, value: JSON.parse(output.trim().split("\n").at(-1)!) as T };
}

async function runTrainfleet(): Promise<Result> {
  const running = await startJob(values.quick ? ["--epochs", String(job.epochs)] : []);
  const { code, wallMs } = await running.exited;
  const finished = finishedJob(running, code);
  removeJob(running);
  return { wallMs, testAccuracy: finished.testAccuracy, parametersSha256: finished.parametersSha256 };
}

async function runTorch(data: string): Promise<Result> {
  const port = await freePort();
  const { adam } = job;
  // One thread per process for torch's own pool, OpenMP and OpenBLAS's pthreads alike.
  const env = { ...process.env, OMP_NUM_THREADS: "1", OPENBLAS_NUM_THREADS: "1" };
  const ranks = Array.from({ length: job.workers }, (_, rank) => ({
    command: python,
    args: [
      torchScript,
      ...["--rank", rank, "--world", job.workers, "--port", port, "--data-dir", data, "--epochs", job.epochs],
      ...["--batch-per-worker", job.batchPerWorker, "--hidden", job.hidden, "--seed", job.seed],
      ...["--lr", adam.learningRate, "--beta1", adam.beta1, "--beta2", adam.beta2, "--epsilon", adam.epsilon],
    ].map(String),
    env,
  }));
  const { wallMs, value } = await timedJson<{ testAccuracy: number }>(ranks, "torch DDP");
  return { wallMs, testAccuracy: value.testAccuracy };
}

async function runTfjs(data: string): Promise<Result> {
  const { adam } = job;
  const args = [
    tfjsScript,
    data,
    job.epochs,
    job.workers * job.batchPerWorker,
    job.hidden,
    adam.learningRate,
    adam.beta1,
    adam.beta2,
    adam.epsilon,
    job.seed,
  ];
  const { wallMs, value } = await timedJson<{ testAccuracy: number }>(
    [{ command: process.execPath, args: args.map(String) }],
    "stock tf.js",
  );
  return { wallMs, testAccuracy: value.testAccuracy };
}

const data = dataDir();
const blas = contenders.includes("torch") ? torchBlas() : undefined;
const loadBefore = loadavg()[0]!;
const { adam } = job;
console.log(
  `time to accuracy: the default job (MLP 784-${job.hidden}-10, Adam lr ${adam.learningRate} betas ${adam.beta1}/${adam.beta2} eps ${adam.epsilon}, ` +
    `${job.workers} workers x batch ${job.batchPerWorker} = global batch ${job.workers * job.batchPerWorker}, ${job.epochs} epoch${job.epochs === 1 ? "" : "s"}), ` +
    `${sittings} sitting${sittings === 1 ? "" : "s"}, order rotated by sitting`,
);
console.log(`command: node bench/dist/time-to-accuracy.js ${process.argv.slice(2).join(" ")}`.trimEnd());
console.log(
  `machine: ${cpus().length} cores (${cpus()[0]?.model.trim() ?? "?"}), node ${process.version}` +
    (blas === undefined ? "" : `, torch ${blas.torch} with ${blas.name} (${blas.libraries.join(", ")})`),
);

const results = new Map<Contender, Result[]>(contenders.map((c) => [c, []]));
for (let sitting = 0; sitting < sittings; sitting++) {
  const order = contenders.map((_, i) => contenders[(i + sitting) % contenders.length]!);
  for (const contender of order) {
    const result = contender === "trainfleet" ? await runTrainfleet() : contender === "torch" ? await runTorch(data) : await runTfjs(data);
    results.get(contender)!.push(result);
    console.log(
      `  sitting ${sitting + 1}, ${contender}: ${(result.wallMs / 1000).toFixed(1)} s to ${(100 * result.testAccuracy).toFixed(2)}% test accuracy`,
    );
  }
}

const ours = results.get("trainfleet")!;
console.log(`\nload average (1 min): ${loadBefore.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after`);
console.log("\n| contender | wall time, spawn to exit | test accuracy | wall time / trainfleet's, per sitting |");
console.log("|---|---:|---:|---:|");
for (const contender of contenders) {
  const runs = results.get(contender)!;
  const ratios = runs.map((run, i) => run.wallMs / ours[i]!.wallMs);
  console.log(
    `| ${labels[contender]} | ${spread(
      runs.map((r) => r.wallMs / 1000),
      " s",
    )} | ${spread(
      runs.map((r) => 100 * r.testAccuracy),
      "%",
      2,
    )} | ${contender === "trainfleet" ? "1.00x" : spread(ratios, "x", 2)} |`,
  );
}
for (const contender of contenders.filter((c) => c !== "trainfleet")) {
  const theirs = median(results.get(contender)!.map((r) => r.wallMs));
  const mine = median(ours.map((r) => r.wallMs));
  console.log(
    mine <= theirs
      ? `trainfleet is ${(theirs / mine).toFixed(2)}x faster than ${shortNames[contender]} (median wall times)`
      : `trainfleet is ${(mine / theirs).toFixed(2)}x slower than ${shortNames[contender]} (median wall times)`,
  );
}
console.log(parameterCheck(ours.map((r) => r.parametersSha256!)));
