/**
 * `trainfleet run`: a whole job on this machine. Starts the coordinator, the
 * parameter-server shards and the workers as separate processes on 127.0.0.1, shows a
 * live progress line from the coordinator's status event stream, prints the test accuracy
 * and the wall time, and exits 0 when the job succeeded.
 *
 * Each job gets its own read and control tokens (JOBFOLDER/tokens/, owner-only): the
 * coordinator is given the files, this process reads the status with the read token, and
 * the dashboard link it prints carries the read token in its #fragment (which a browser
 * never sends to a server). The status URL goes to JOBFOLDER/status-url, so that
 * `trainfleet status JOBFOLDER` finds both.
 *
 * Checkpoints go to `<job folder>/checkpoints`. SIGTERM (or Ctrl-C) goes to the
 * coordinator first, which finishes the steps handed out, takes a just-in-time checkpoint
 * and stops the members; `--resume <job folder>` continues that job in its folder.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { totalmem } from "node:os";
import { join, resolve } from "node:path";
import { toJson } from "@bufbuild/protobuf";
import type { JobStatus } from "@trainfleet/proto";
import { Code, JobPhase, JobSpecSchema, Placement, TrainfleetError } from "@trainfleet/proto";
import { defaultCertificateValiditySeconds, splitUserinfo } from "@trainfleet/runtime";
import type { ResolvedJobSpec } from "@trainfleet/spec";
import { dataShape, latestCheckpointFileName, parameterLayout } from "@trainfleet/spec";
import type { BackendChoice } from "@trainfleet/worker";
import type { Command } from "../command.js";
import { commonFlags } from "../common-flags.js";
import type { FlagValue } from "../flags.js";
import { checkFleetMemory } from "../fleet-memory.js";
import { jobFlags, jobSpecFromFlags } from "../job-flags.js";
import type { ChildExit, FleetChild } from "../local-fleet.js";
import { LocalFleet, logTail, restarts } from "../local-fleet.js";
import { writeLocalFleetCredentials } from "../local-fleet-credentials.js";
import { pinArtifacts } from "../model-files.js";
import { createProgressView, formatDuration } from "../progress-view.js";
import { resumableJob } from "../resumable-job.js";
import type { StatusTarget } from "../status-client.js";
import { followStatus, statusTarget } from "../status-client.js";
import { ensureJobTokens, readTokenFile } from "../token-files.js";
import { leaseFlag, natsCredentialsFlag, natsUrlFlag, refuseJobFlagsWithResume } from "./coordinator.js";
import { backendFlag, dataDirFlag, dataDirs } from "./worker.js";

/** How long a SIGTERM'd coordinator gets for its just-in-time checkpoint before the rest of the fleet is stopped anyway. */
const checkpointGraceMs = 75_000;

export const runCommand: Command = {
  name: "run",
  usage: "trainfleet run [flags] | trainfleet run --resume JOB_FOLDER [flags]",
  summary:
    "Trains one job on this machine: a coordinator, --shards parameter-server shards and --workers workers, each its own OS process talking gRPC on 127.0.0.1. Logs, the resolved spec, checkpoints (checkpoints/) and the trained parameters go to a new folder under --jobs-dir. SIGTERM or Ctrl-C lets the steps handed out finish and writes a checkpoint; --resume JOB_FOLDER continues that job exactly, in the same folder.",
  flags: {
    resume: {
      kind: "string",
      help: "Continue the job of this job folder (from an earlier run) from its newest checkpoint: its spec.json, every checkpoint file's sha256 checked first; the run ends bit for bit as the uninterrupted one would have (given the same --backend). Takes no job flags.",
    },
    ...jobFlags,
    ...backendFlag,
    ...dataDirFlag,
    "jobs-dir": {
      kind: "string",
      default: "jobs",
      env: "TRAINFLEET_JOBS_DIR",
      help: "Where each run gets its folder of logs and results.",
    },
    "ledger-audit": {
      kind: "boolean",
      help: "Record which samples every completed step consumed in ledger.jsonl in the job folder (a resumed run appends to it), to audit that each sample of an epoch is used exactly once.",
    },
    ...leaseFlag,
    ...natsUrlFlag,
    ...natsCredentialsFlag,
    insecure: {
      kind: "boolean",
      help: "Plaintext between the job's processes, on purpose: no CA, no certificates, no connection encrypted or authenticated; each process logs a warning. Without it the run makes a CA for the job and a certificate for each process (the job folder's tls/) and every connection is mutual TLS.",
    },
    "member-certificate-seconds": {
      kind: "integer",
      min: 1,
      default: String(defaultCertificateValiditySeconds),
      env: "TRAINFLEET_MEMBER_CERTIFICATE_SECONDS",
      help: "How long each process's certificate is valid. The run renews it at 2/3 of that (the job folder's tls/ files are replaced) and the processes reload it without a restart; the job's CA stays in this process's memory.",
    },
    ...commonFlags,
  },
  async run({ values, signal, env, logger }) {
    const started = Date.now();
    const resumeFolder = values.resume as string | undefined;
    if (resumeFolder !== undefined) refuseJobFlagsWithResume(values);
    // A resumed job's spec and checkpoint are checked (every file's sha256) before anything starts.
    const resumed = resumeFolder === undefined ? undefined : await resumableJob(resolve(resumeFolder));
    // Resolved once, here, with the job's own model and data read and pinned (a bad file fails
    // before anything starts; a resumed job's files must still be the ones it pinned); the
    // folder, the fleet's size and the coordinator's spec.json all come from it.
    const spec: ResolvedJobSpec = await pinArtifacts(
      resumed?.spec ?? (await jobSpecFromFlags(values)),
      values.backend as BackendChoice,
      logger,
    );
    // Before a folder is made or a process started: every process of the fleet runs on this machine.
    checkFleetMemory(spec, totalmem());
    const dirs = await dataDirs(values["data-dir"] as string | undefined, env);
    // Only the built-in dataset is looked for here; a manifest's files were read above.
    const { locateFashionMnist } = await import("@trainfleet/worker/dataset");
    const dataDir = spec.dataset!.manifest === "" ? await locateFashionMnist(dirs) : (dirs[0] ?? "");
    const folder = resumed?.folder ?? resolve(values["jobs-dir"] as string, `${spec.jobId}-${timestamp(new Date(started))}`);
    const specPath = join(folder, "spec.json");
    const checkpointDir = join(folder, "checkpoints");
    if (resumed === undefined) {
      mkdirSync(folder, { recursive: true });
      writeFileSync(specPath, `${JSON.stringify(toJson(JobSpecSchema, spec), null, 2)}\n`);
    }
    // A resumed job keeps the tokens it has (a dashboard still open on it goes on working).
    const tokenFiles = ensureJobTokens(folder);
    // Every process gets its own certificate of a new CA for the job, renewed while the run goes on, unless plaintext is asked for.
    const credentials =
      values.insecure === true
        ? { flags: () => ["--insecure"], colocatedFlags: () => [], close: () => {} }
        : await writeLocalFleetCredentials(folder, spec, {
            logger,
            certificateSeconds: values["member-certificate-seconds"] as number,
          });
    const readToken = readTokenFile(tokenFiles.read, "the job folder's read token");
    const out = process.stdout;
    if (values.insecure === true)
      out.write(
        "warning: --insecure: the job's processes talk plaintext, so anyone who reaches their ports can register, push and report as a member\n",
      );
    out.write(
      `${describe(spec)}\n${resumed === undefined ? "" : `resuming at step ${resumed.checkpoint.manifest.version} from ${resumed.checkpoint.path}\n`}logs and results: ${folder}\n`,
    );

    const logLevel = values["log-level"] as string;
    // A resumed run's logs go next to the first run's, under names of their own.
    const fleet = new LocalFleet(
      folder,
      { ...env, TRAINFLEET_LOG_LEVEL: logLevel },
      resumed === undefined ? "" : `.resume-${resumeCount(folder)}`,
    );
    let coordinator: FleetChild | undefined;
    const onAbort = () => {
      if (coordinator === undefined) return fleet.stop(5_000);
      // The coordinator stops the job (after a checkpoint) and with it every member.
      out.write("\nstopping: the steps already handed out finish and a checkpoint is written first\n");
      coordinator.process.kill("SIGTERM");
      // Members stop when the coordinator tells them; if it cannot, they are stopped after the grace.
      const timer = setTimeout(() => fleet.stop(5_000), checkpointGraceMs);
      void coordinator.exited.then(() => clearTimeout(timer));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    // A second signal ends this process at once (cli main): the fleet goes with it.
    const killFleet = () => fleet.kill();
    process.once("exit", killFleet);
    // The status stream outlives a signal: it carries the job to its end, checkpoint and all.
    const watching = new AbortController();
    /** Whether the job has started (its status has left PENDING). */
    let jobStarted = false;
    try {
      // The coordinator gets the spec resolved above (spec.json) and no job flag, so it merges
      // nothing over it; it still resolves it, once, where it enters that process (it checks
      // a file it did not write itself; resolving a resolved spec changes nothing).
      const origin = resumed === undefined ? ["--spec", specPath] : ["--resume", resumed.checkpoint.path];
      // NATS credentials (in the URL, or a file) reach the coordinator in a 0600 file of the job folder, never on its command line.
      const { natsUrl, nats } = natsForCoordinator(values, folder);
      const audit = values["ledger-audit"] === true ? ["--ledger-audit", join(folder, "ledger.jsonl")] : [];
      const coordinatorArgs = (listen: string, httpListen: string, from: string[]) => [
        ...[
          "coordinator",
          "--listen",
          listen,
          "--http-listen",
          httpListen,
          ...from,
          "--output-dir",
          folder,
          "--checkpoint-dir",
          checkpointDir,
          "--read-token-file",
          tokenFiles.read,
          "--control-token-file",
          tokenFiles.control,
          ...credentials.flags("coordinator"),
        ],
        ...["--lease-ms", String(values["lease-ms"]), ...nats, ...audit],
      ];
      /** Where the first coordinator listens: one started again listens there too, so that members and the status reach it. */
      let listening: Listening | undefined;
      fleet.onRestart = (exit, restart) =>
        out.write(`\n${exit.name} was killed by ${exit.signal}; starting it again (restart ${restart} of ${restarts})\n`);
      coordinator = fleet.spawn("coordinator", coordinatorArgs("127.0.0.1:0", "127.0.0.1:0", origin), {
        ipc: true,
        // It finds the job in its saved state (the checkpoint folder) and resumes it from the newest checkpoint.
        restartArgs: () =>
          coordinatorArgs(listening!.address, listening!.statusUrl === undefined ? "" : new URL(listening!.statusUrl).host, [
            "--spec",
            specPath,
          ]),
      });
      if (signal.aborted) onAbort();
      const spawned = coordinator;
      listening = await Promise.race([
        new Promise<Listening>((resolveAddress) =>
          spawned.process.on(
            "message",
            (m: Partial<Listening> & { type?: string }) =>
              m.type === "listening" && resolveAddress({ address: m.address!, statusUrl: m.statusUrl }),
          ),
        ),
        fleet.firstFailure.then((exit) => Promise.reject(childFailed(exit, fleet))),
      ]);
      const { address, statusUrl } = listening;
      if (statusUrl === undefined) throw new TrainfleetError(Code.INTERNAL, "the coordinator started without its HTTP status API");
      writeFileSync(join(folder, "status-url"), `${statusUrl}\n`);
      out.write(`coordinator: ${address} (gRPC; JobService.WatchJob streams the status with the job's read token)\n`);
      out.write(`status: ${statusUrl} (trainfleet status ${folder} --watch)\n`);
      out.write(`dashboard: ${new URL(statusUrl).origin}/#token=${readToken}\n`);
      const target: StatusTarget = { ...statusTarget(statusUrl, spec.jobId), token: { value: readToken, from: tokenFiles.read } };
      if (natsUrl !== undefined)
        out.write(
          `events: ${natsUrl} trainfleet.jobs.${spec.jobId}.events/.metrics (trainfleet events --nats-url ${natsUrl} --job ${spec.jobId} --from-start)\n`,
        );
      const colocated = spec.parameterServers!.placement === Placement.COLOCATED;
      for (let shard = 0; !colocated && shard < spec.parameterServers!.shards; shard++) {
        const args = [
          "ps",
          "--coordinator",
          address,
          "--shard-index",
          String(shard),
          "--listen",
          "127.0.0.1:0",
          "--metrics-listen",
          "127.0.0.1:0",
          ...credentials.flags(`ps-${shard}`),
        ];
        fleet.spawn(`ps-${shard}`, args, { restartArgs: () => args });
      }
      for (let worker = 0; worker < spec.workers!.replicas; worker++) {
        const shard = colocated
          ? [
              ...["--colocated-shard-index", String(worker), "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"],
              ...credentials.colocatedFlags(worker),
            ]
          : [];
        // Once the job runs, a lost worker is the coordinator's to handle; before, nothing would replace it.
        // A colocated worker holds a shard: its loss always stops the job.
        // Its host is its certificate's name: a failure it reports before registering is then its own.
        const name = `worker-${worker}`;
        const args = [
          ...["worker", "--coordinator", address, "--host", name, "--backend", values.backend as string, "--data-dir", dataDir],
          ...shard,
          ...credentials.flags(name),
        ];
        fleet.spawn(name, args, {
          essential: () => colocated || !jobStarted,
          ...(colocated ? {} : { restartArgs: () => args }),
        });
      }
      const progress = createProgressView(out);
      const view = {
        update(status: JobStatus) {
          jobStarted ||= status.phase !== JobPhase.PENDING;
          progress.update(status);
        },
        end: () => progress.end(),
      };
      const final = await Promise.race([
        watch(target, view, watching.signal),
        // A process that fails before the job has ended stops the run; its log says why.
        fleet.firstFailure.then((exit) => Promise.reject(childFailed(exit, fleet))),
      ]);
      const exits = await fleet.waitAll(30_000);
      const failed = exits.filter((exit) => exit.code !== 0 && final.phase === JobPhase.SUCCEEDED);
      for (const exit of failed)
        out.write(
          `warning: ${exit.name} exited with ${exit.code ?? exit.signal} after the job; see ${fleet.children.find((c) => c.name === exit.name)?.logPath}\n`,
        );
      out.write(`${summary(final, Date.now() - started)}\nresults: ${folder}\n`);
      if (final.phase !== JobPhase.SUCCEEDED && existsSync(join(checkpointDir, latestCheckpointFileName)))
        out.write(`resume with: trainfleet run --resume ${folder}\n`);
      return final.phase === JobPhase.SUCCEEDED ? 0 : 1;
    } catch (error) {
      fleet.stop(5_000);
      await fleet.waitAll(10_000);
      if (signal.aborted) throw new TrainfleetError(Code.CANCELLED, `stopped by signal; logs in ${folder}`);
      throw error;
    } finally {
      credentials.close();
      watching.abort();
      signal.removeEventListener("abort", onAbort);
      process.removeListener("exit", killFleet);
    }
  },
};

/** What the coordinator child reports once it listens: its gRPC address and the job's status URL. */
interface Listening {
  address: string;
  statusUrl: string | undefined;
}

/** How many runs have resumed in `folder` before (their coordinator logs), so this one's logs get new names. */
function resumeCount(folder: string): number {
  return readdirSync(folder).filter((name) => /^coordinator\.resume-\d+\.log$/.test(name)).length + 1;
}

/**
 * Follows the job's status to its end. A stream that breaks (the coordinator was killed and
 * is being started again on the same address) is opened again, for up to a minute; one that
 * ends is the job's end.
 */
async function watch(target: StatusTarget, view: ReturnType<typeof createProgressView>, signal: AbortSignal): Promise<JobStatus> {
  let last: JobStatus | undefined;
  for await (const { status } of followStatus(target, signal, { forMs: 60_000 })) {
    last = status;
    view.update(status);
  }
  view.end();
  if (last === undefined) throw new TrainfleetError(Code.UNAVAILABLE, "the coordinator closed the status stream before sending a status");
  return last;
}

function childFailed(exit: ChildExit, fleet: LocalFleet): TrainfleetError {
  const child = fleet.children.find((c) => c.name === exit.name);
  const how = exit.signal === null ? `exited with code ${exit.code}` : `was killed by ${exit.signal}`;
  const tail = child === undefined ? "" : `\n--- last lines of ${child.logPath} ---\n${logTail(child.logPath)}`;
  return new TrainfleetError(Code.ABORTED, `${exit.name} ${how} before the job ended${tail}`);
}

function describe(spec: ResolvedJobSpec): string {
  const layout = parameterLayout(spec.model!, dataShape(spec.dataset!));
  const model = spec.model!.kind;
  const { height, width, channels, classes } = layout.input;
  const shape =
    model.case === "mlp"
      ? `mlp ${[height * width * channels, ...model.value.hiddenUnits, classes].join("-")}`
      : model.case === "cnn"
        ? `cnn conv ${model.value.convFilters.join(",")}`
        : `${model.value?.uri} (${layout.tensors.length} trainable tensors)`;
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

/**
 * The coordinator's NATS flags: the URL without userinfo, and the credentials (the URL's
 * userinfo, or --nats-credentials-file's) in `nats-credentials` (0600) in the job folder.
 * `natsUrl` is the URL as it may be printed.
 */
function natsForCoordinator(values: Record<string, FlagValue>, folder: string): { natsUrl: string | undefined; nats: string[] } {
  const given = values["nats-url"] as string | undefined;
  if (given === undefined) return { natsUrl: undefined, nats: [] };
  const { urls, userinfo } = splitUserinfo(given);
  const file = values["nats-credentials-file"] as string | undefined;
  if (file !== undefined) return { natsUrl: urls, nats: ["--nats-url", urls, "--nats-credentials-file", resolve(file)] };
  if (userinfo === "") return { natsUrl: urls, nats: ["--nats-url", urls] };
  const colon = userinfo.indexOf(":");
  const credentials =
    colon < 0
      ? decodeURIComponent(userinfo)
      : `${decodeURIComponent(userinfo.slice(0, colon))}:${decodeURIComponent(userinfo.slice(colon + 1))}`;
  const path = join(folder, "nats-credentials");
  writeFileSync(path, `${credentials}\n`, { mode: 0o600 });
  // The mode applies at creation only: a file left by an earlier run of a resumed job is made private too.
  chmodSync(path, 0o600);
  return { natsUrl: urls, nats: ["--nats-url", urls, "--nats-credentials-file", path] };
}
