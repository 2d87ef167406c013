/**
 * `npm run bench:training`: where a training step's time goes. For the MLP and the CNN,
 * 1 and 2 workers (batch 64 each, 2 dedicated shards, TCP channel, wasm backend), it runs
 * real local fleets and reads the workers' per-step timings: compute (forward + backward)
 * against communication (push + pull, including the wait for the other rank), samples/s,
 * and the scaling efficiency of 2 workers against 1. Beside it, torch DDP (gloo) on the
 * same models and batch, when Debian's python3-torch is installed: the kernel gap (compute
 * per step) and the orchestration gap (what the second worker costs) side by side.
 */
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { runFleet } from "@trainfleet/testing/fleet/run-fleet";
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

async function fleet(model: string, workers: number, data: string): Promise<Timing> {
  const { code, folder } = await runFleet(
    [
      ...modelFlags[model]!,
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
console.log(
  `trainfleet training step: batch ${batch} per worker, ${steps} steps (first 10% dropped), 2 dedicated shards, TCP channel, wasm; ${gloo.ok ? `torch ${gloo.version} DDP gloo, 1 thread` : gloo.why}`,
);
console.log(
  "| model | workers | step | compute | push+pull (and wait) | communication share | samples/s | scaling | torch DDP step | torch samples/s | torch scaling | torch all-reduce |",
);
console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const model of values.models.split(",")) {
  const one = await fleet(model, 1, data);
  const two = await fleet(model, 2, data);
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
