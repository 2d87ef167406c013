/**
 * `trainfleet run`: a whole job on this machine. Starts the coordinator, the
 * parameter-server shards and the workers as separate processes on 127.0.0.1, shows a
 * live progress line from the coordinator's WatchJob stream, prints the test accuracy
 * and the wall time, and exits 0 when the job succeeded.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { toJson } from "@bufbuild/protobuf";
import { Code, JobPhase, JobSpecSchema, JobService, Placement, TrainfleetError, createClient, datasetShape, parameterLayout } from "@trainfleet/proto";
import type { JobSpec, JobStatus } from "@trainfleet/proto";
import { locateFashionMnist } from "@trainfleet/worker";
import type { Command } from "../command.js";
import { commonFlags } from "../common-flags.js";
import { jobFlags, jobSpecFromFlags } from "../job-flags.js";
import { LocalFleet, logTail } from "../local-fleet.js";
import type { ChildExit } from "../local-fleet.js";
import { createProgressView, formatDuration } from "../progress-view.js";
import { leaseFlag } from "./coordinator.js";
import { backendFlag, dataDirFlag, dataDirs } from "./worker.js";

export const runCommand: Command = {
  name: "run",
  usage: "trainfleet run [flags]",
  summary:
    "Trains one job on this machine: a coordinator, --shards parameter-server shards and --workers workers, each its own OS process talking gRPC on 127.0.0.1. Logs, the resolved spec and the trained parameters go to a new folder under --jobs-dir.",
  flags: {
    ...jobFlags,
    ...backendFlag,
    ...dataDirFlag,
    "jobs-dir": { kind: "string", default: "jobs", env: "TRAINFLEET_JOBS_DIR", help: "Where each run gets its folder of logs and results." },
    ...leaseFlag,
    ...commonFlags,
  },
  async run({ values, signal, env }) {
    const started = Date.now();
    const spec = await jobSpecFromFlags(values);
    const dirs = dataDirs(values["data-dir"] as string | undefined, env);
    const dataDir = await locateFashionMnist(dirs);
    const folder = resolve(values["jobs-dir"] as string, `${spec.jobId}-${timestamp(new Date(started))}`);
    mkdirSync(folder, { recursive: true });
    const specPath = join(folder, "spec.json");
    writeFileSync(specPath, `${JSON.stringify(toJson(JobSpecSchema, spec), null, 2)}\n`);
    const out = process.stdout;
    out.write(`${describe(spec)}\nlogs and results: ${folder}\n`);

    const logLevel = values["log-level"] as string;
    const fleet = new LocalFleet(folder, { ...env, TRAINFLEET_LOG_LEVEL: logLevel });
    const onAbort = () => fleet.stop(5_000);
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      const coordinator = fleet.spawn("coordinator", ["coordinator", "--listen", "127.0.0.1:0", "--spec", specPath, "--output-dir", folder, "--lease-ms", String(values["lease-ms"])], { ipc: true });
      const address = await Promise.race([
        new Promise<string>((resolveAddress) => coordinator.process.on("message", (m: { type?: string; address?: string }) => m.type === "listening" && resolveAddress(m.address!))),
        fleet.firstFailure.then((exit) => Promise.reject(childFailed(exit, fleet))),
      ]);
      const colocated = spec.parameterServers!.placement === Placement.COLOCATED;
      for (let shard = 0; !colocated && shard < spec.parameterServers!.shards; shard++) {
        fleet.spawn(`ps-${shard}`, ["ps", "--coordinator", address, "--shard-index", String(shard), "--listen", "127.0.0.1:0"]);
      }
      for (let worker = 0; worker < spec.workers!.replicas; worker++) {
        const shard = colocated ? ["--colocated-shard-index", String(worker), "--listen", "127.0.0.1:0"] : [];
        fleet.spawn(`worker-${worker}`, ["worker", "--coordinator", address, "--backend", values.backend as string, "--data-dir", dataDir, ...shard]);
      }
      const final = await Promise.race([
        watch(address, createProgressView(out), signal),
        // A process that fails before the job has ended stops the run; its log says why.
        fleet.firstFailure.then((exit) => Promise.reject(childFailed(exit, fleet))),
      ]);
      const exits = await fleet.waitAll(30_000);
      const failed = exits.filter((exit) => exit.code !== 0 && final.phase === JobPhase.SUCCEEDED);
      for (const exit of failed) out.write(`warning: ${exit.name} exited with ${exit.code ?? exit.signal} after the job; see ${join(folder, `${exit.name}.log`)}\n`);
      out.write(`${summary(final, Date.now() - started)}\nresults: ${folder}\n`);
      return final.phase === JobPhase.SUCCEEDED ? 0 : 1;
    } catch (error) {
      fleet.stop(5_000);
      await fleet.waitAll(10_000);
      if (signal.aborted) throw new TrainfleetError(Code.CANCELLED, `stopped by signal; logs in ${folder}`);
      throw error;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  },
};

async function watch(address: string, view: ReturnType<typeof createProgressView>, signal: AbortSignal): Promise<JobStatus> {
  const jobs = createClient(JobService, address);
  try {
    let last: JobStatus | undefined;
    for await (const { status } of jobs.watchJob({}, { signal })) {
      if (status === undefined) continue;
      last = status;
      view.update(status);
    }
    view.end();
    if (last === undefined) throw new TrainfleetError(Code.UNAVAILABLE, "the coordinator closed the status stream before sending a status");
    return last;
  } finally {
    jobs.close();
  }
}

function childFailed(exit: ChildExit, fleet: LocalFleet): TrainfleetError {
  const child = fleet.children.find((c) => c.name === exit.name);
  const how = exit.signal === null ? `exited with code ${exit.code}` : `was killed by ${exit.signal}`;
  const tail = child === undefined ? "" : `\n--- last lines of ${child.logPath} ---\n${logTail(child.logPath)}`;
  return new TrainfleetError(Code.ABORTED, `${exit.name} ${how} before the job ended${tail}`);
}

function describe(spec: JobSpec): string {
  const layout = parameterLayout(spec.model!, datasetShape(spec.dataset!.name));
  const model = spec.model!.kind;
  const { height, width, channels, classes } = layout.input;
  const shape =
    model.case === "mlp"
      ? `mlp ${[height * width * channels, ...model.value.hiddenUnits, classes].join("-")}`
      : `cnn conv ${model.case === "cnn" ? model.value.convFilters.join(",") : "?"}`;
  const training = spec.training!;
  return (
    `trainfleet run: job ${spec.jobId}: ${shape} (${layout.parameterCount.toLocaleString("en-US")} parameters), ` +
    `${spec.workers!.replicas} workers x batch ${training.batchSizePerWorker}, ${spec.parameterServers!.shards} parameter-server shards${spec.parameterServers!.placement === Placement.COLOCATED ? " (colocated)" : ""}, ` +
    `${training.optimizer!.kind.case} lr ${training.optimizer!.kind.value?.learningRate}, ${training.epochs} epochs`
  );
}

function summary(status: JobStatus, wallMs: number): string {
  const phase = JobPhase[status.phase] ?? String(status.phase);
  if (status.phase !== JobPhase.SUCCEEDED) return `${phase} (${status.reason}): ${status.message}\nwall time ${formatDuration(wallMs)}`;
  const accuracy = ((status.testAccuracy ?? 0) * 100).toFixed(2);
  return `${phase}: test accuracy ${accuracy}% (test loss ${(status.testLoss ?? 0).toFixed(4)}) after ${status.step} steps; wall time ${formatDuration(wallMs)} (${(wallMs / 1000).toFixed(1)} s)`;
}

function timestamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
}
