/**
 * `npm run bench:training`: where a training step's time goes. For the MLP and the CNN,
 * 1 and 2 workers (batch 64 each, 2 dedicated shards, TCP channel, wasm backend), it runs
 * real local fleets and reads the workers' per-step timings: compute (forward + backward)
 * against communication (push + pull, including the wait for the other rank), samples/s,
 * and the scaling efficiency of 2 workers against 1. Beside it, torch DDP (gloo) on the
 * same models and batch, when Debian's python3-torch is installed: the kernel gap (compute
 * per step) and the orchestration gap (what the second worker costs) side by side. Each
 * model also runs as a user's model.json of the same shape (--model-json, written by
 * tf.js's own model.save): a user's model must train as fast as the built-in path.
 */
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { create } from "@bufbuild/protobuf";
import { JobSpecSchema } from "@trainfleet/proto";
import { silentLogger } from "@trainfleet/runtime";
import { dataShape, resolveJobSpec } from "@trainfleet/spec";
import { runFleet } from "@trainfleet/testing/fleet/run-fleet";
import { buildModel, selectBackend, writeTrainedModel } from "@trainfleet/worker";
import { median } from "./child.js";
import { glooAvailable } from "./gloo.js";

const { values } = parseArgs({ options: { steps: { type: "string", default: "300" }, models: { type: "string", default: "mlp,cnn" } } });
const steps = Number(values.steps);
const batch = 64;
const ddpScript = fileURLToPath(new URL("../torch-ddp-step.py", import.meta.url));
const modelFlags: Record<string, string[]> = {
  mlp: ["--model", "mlp", "--hidden", "256"],
  cnn: ["--model", "cnn", "--conv-filters", "8,16"],
};

/** The built-in model as a user would bring it: model.json + weights of the same layers (its untrained weights). */
async function asModelJson(model: string): Promise<string[]> {
  const spec = resolveJobSpec(
    create(JobSpecSchema, model === "cnn" ? { model: { kind: { case: "cnn", value: { convFilters: [8, 16], kernelSize: 3 } } } } : {}),
  );
  const built = await buildModel(spec.model!, dataShape(spec.dataset!));
  const dir = mkdtempSync(join(tmpdir(), `trainfleet-bench-${model}-`));
  await writeTrainedModel(built, built.parameters(), dir);
  built.dispose();
  return ["--model-json", join(dir, "model.json"), "--loss", "sparse-categorical-crossentropy"];
}

interface Timing {
  stepMs: number;
  computeMs: number;
  communicateMs: number;
}

function dataDir(): string {
  const result = spawnSync("bash", [fileURLToPath(new URL("../../scripts/fetch-data.sh", import.meta.url)), "--quiet"], {
    encoding: "utf8",
  });
  if (result.status !== 0) throw new Error(`fetch-data failed: ${result.stderr}`);
  return result.stdout.trim();
}

async function fleet(flags: string[], workers: number, data: string): Promise<Timing> {
  const { code, folder } = await runFleet(
    [
      ...flags,
      "--workers",
      String(workers),
      "--batch-size",
      String(batch),
      "--max-steps",
      String(steps),
      "--eval-samples",
      "100",
      "--backend",
      "wasm",
      "--data-dir",
      data,
      "--log-level",
      "debug",
    ],
    Infinity,
  );
  if (code !== 0) throw new Error(`trainfleet run exited with ${code}; logs in ${folder}`);
  const reports = readFileSync(join(folder, "worker-0.log"), "utf8")
    .split("\n")
    .filter((line) => line.includes('"step done"'))
    .map((line) => JSON.parse(line) as { time: number; computeMs: number; pushPullMs: number });
  const warm = reports.slice(Math.floor(reports.length / 10));
  const intervals = warm.slice(1).map((entry, i) => entry.time - warm[i]!.time);
  return {
    stepMs: median(intervals),
    computeMs: median(warm.map((s) => s.computeMs)),
    communicateMs: median(warm.map((s) => s.pushPullMs)),
  };
}

async function ddp(model: string, workers: number, data: string): Promise<{ stepMs: number; allReduceMs: number }> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const children = Array.from({ length: workers }, (_, rank) =>
    spawn("/usr/bin/python3", [ddpScript, String(rank), String(workers), String(port), model, String(batch), String(steps), data], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, OMP_NUM_THREADS: "1" },
    }),
  );
  let output = "";
  children[0]!.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const codes = await Promise.all(children.map(async (c) => ((await once(c, "exit")) as [number | null])[0]));
  if (codes.some((c) => c !== 0)) throw new Error(`torch DDP exited with ${codes.join(", ")}`);
  return JSON.parse(output) as { stepMs: number; allReduceMs: number };
}

const data = dataDir();
const gloo = glooAvailable();
// The model.json is written here, in this process: cpu is enough to write it.
await selectBackend("cpu", silentLogger);
console.log(
  `trainfleet training step: batch ${batch} per worker, ${steps} steps (first 10% dropped), 2 dedicated shards, TCP channel, wasm; ${gloo.ok ? `torch ${gloo.version} DDP gloo, 1 thread` : gloo.why}`,
);
console.log(
  "| model | workers | step | compute | push+pull (and wait) | communication share | samples/s | scaling | torch DDP step | torch samples/s | torch scaling | torch all-reduce |",
);
console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
const userRows: string[] = [];
for (const model of values.models.split(",")) {
  const one = await fleet(modelFlags[model]!, 1, data);
  const two = await fleet(modelFlags[model]!, 2, data);
  const userFlags = await asModelJson(model);
  const [userOne, userTwo] = [await fleet(userFlags, 1, data), await fleet(userFlags, 2, data)];
  for (const [workers, builtIn, user] of [
    [1, one, userOne],
    [2, two, userTwo],
  ] as const) {
    userRows.push(
      `| ${model} | ${workers} | ${builtIn.stepMs.toFixed(1)} ms | ${user.stepMs.toFixed(1)} ms | ${(user.stepMs / builtIn.stepMs).toFixed(2)}x | ${builtIn.computeMs.toFixed(1)} ms | ${user.computeMs.toFixed(1)} ms | ${(user.computeMs / builtIn.computeMs).toFixed(2)}x |`,
    );
  }
  const torchOne = gloo.ok ? await ddp(model, 1, data) : undefined;
  const torchTwo = gloo.ok ? await ddp(model, 2, data) : undefined;
  for (const [workers, ours, theirs] of [
    [1, one, torchOne],
    [2, two, torchTwo],
  ] as const) {
    const rate = (workers * batch * 1000) / ours.stepMs;
    const scaling = workers === 1 ? "1.00" : (rate / (2 * ((batch * 1000) / one.stepMs))).toFixed(2);
    const torchRate = theirs === undefined ? undefined : (workers * batch * 1000) / theirs.stepMs;
    const torchScaling =
      theirs === undefined || torchOne === undefined
        ? "-"
        : workers === 1
          ? "1.00"
          : (torchRate! / (2 * ((batch * 1000) / torchOne.stepMs))).toFixed(2);
    console.log(
      `| ${model} | ${workers} | ${ours.stepMs.toFixed(1)} ms | ${ours.computeMs.toFixed(1)} ms | ${ours.communicateMs.toFixed(1)} ms | ${((100 * ours.communicateMs) / (ours.computeMs + ours.communicateMs)).toFixed(0)}% | ${rate.toFixed(0)} | ${scaling} | ${theirs === undefined ? "-" : `${theirs.stepMs.toFixed(1)} ms`} | ${torchRate === undefined ? "-" : torchRate.toFixed(0)} | ${torchScaling} | ${theirs === undefined || workers === 1 ? "-" : `${theirs.allReduceMs.toFixed(2)} ms`} |`,
    );
  }
}
console.log("\nThe same shapes as a user's model.json (--model-json), beside the built-in path, same sitting:");
console.log("| model | workers | built-in step | model.json step | ratio | built-in compute | model.json compute | ratio |");
console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
for (const row of userRows) console.log(row);
