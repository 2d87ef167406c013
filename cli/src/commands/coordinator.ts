/** `trainfleet coordinator`: the coordinator of one job. */
import { existsSync, writeFileSync } from "node:fs";
import { defaultTerminationMessagePath, jobFailedExitCode, terminationMessage } from "@trainfleet/k8s/resource";
import type { JobStatus } from "@trainfleet/proto";
import { JobPhase, TrainfleetError } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import { encodeUserinfo, redactingLogger, splitUserinfo, withUserinfo } from "@trainfleet/runtime";
import type { ResolvedJobSpec } from "@trainfleet/spec";
import type { Command } from "../command.js";
import { commonFlags } from "../common-flags.js";
import type { FlagValue } from "../flags.js";
import { UsageError } from "../flags.js";
import { givenJobFlags, jobFlags, jobSpecFromFlags } from "../job-flags.js";
import { pinArtifacts, writeModel } from "../model-files.js";
import { tlsFlags, transportSecurity } from "../tls-flags.js";
import { readTokenFile } from "../token-files.js";

export const leaseFlag = {
  "lease-ms": {
    kind: "integer",
    default: "10000",
    env: "TRAINFLEET_LEASE_MS",
    help: "A member that has not sent a heartbeat for this long is lost.",
  },
} as const;

export const natsUrlFlag = {
  "nats-url": {
    kind: "string",
    env: "TRAINFLEET_NATS_URL",
    help: "NATS server(s) (nats://HOST:PORT, comma-separated) to publish the job's events to: JobEvents on trainfleet.jobs.JOB.events, StepMetrics on trainfleet.jobs.JOB.metrics (protobuf), kept by the JetStream stream TRAINFLEET_JOBS (created or updated: 7 days, 1 GiB). An unreachable server is logged and retried; it never stops the job. Without it the events stay in process. Credentials: --nats-credentials-file (user:password@ in the URL works too, but shows on a command line); logs show the URL without them.",
  },
} as const;

export const natsCredentialsFlag = {
  "nats-credentials-file": {
    kind: "string",
    env: "TRAINFLEET_NATS_CREDENTIALS_FILE",
    help: "A file (best 0600) holding the NATS credentials on one line: user:password, or a token. Better than credentials in --nats-url, which would show on the command line (a URL's user:password@ is taken too, from TRAINFLEET_NATS_URL say). No log line shows them.",
  },
} as const;

/**
 * The NATS URL with its credentials (from --nats-credentials-file, else the URL's own
 * userinfo) as userinfo, which the NATS clients take apart, and the logger to use: one that
 * takes every URL's userinfo out of what it logs whenever there are credentials.
 */
export function natsSettings(values: Record<string, FlagValue>, logger: Logger): { natsUrl: string | undefined; logger: Logger } {
  const url = values["nats-url"] as string | undefined;
  const file = values["nats-credentials-file"] as string | undefined;
  if (url === undefined) {
    if (file !== undefined) throw new UsageError("--nats-credentials-file: give --nats-url too (the NATS server the credentials are for)");
    return { natsUrl: undefined, logger };
  }
  const credentials = file === undefined ? "" : encodeUserinfo(readTokenFile(file, "--nats-credentials-file"));
  const natsUrl = credentials === "" ? url : withUserinfo(url, credentials);
  return { natsUrl, logger: splitUserinfo(natsUrl).userinfo === "" ? logger : redactingLogger(logger) };
}

/** Who may read the job's status and control the job: bearer tokens, the Host check, the event-stream cap. */
export const accessFlags = {
  "read-token-file": {
    kind: "string",
    env: "TRAINFLEET_READ_TOKEN_FILE",
    help: "A file holding the read token: GET /v1/jobs/JOB (and /watch, /workers), /metrics and gRPC GetJob/WatchJob need it (or the control token) as Authorization: Bearer. Or give the token itself in TRAINFLEET_READ_TOKEN (a file is better: nothing on a command line). With no token at all the API is open to anyone who reaches it, and every start logs a warning.",
  },
  "control-token-file": {
    kind: "string",
    env: "TRAINFLEET_CONTROL_TOKEN_FILE",
    help: "A file holding the control token: gRPC SubmitJob needs it; it reads the status too. Or the token itself in TRAINFLEET_CONTROL_TOKEN. With a read token only, nobody may submit a job.",
  },
  "metrics-open": {
    kind: "boolean",
    env: "TRAINFLEET_METRICS_OPEN",
    help: "Serve /metrics without a token, for a Prometheus that scrapes without one (the status itself still needs one).",
  },
  "allowed-hosts": {
    kind: "string",
    env: "TRAINFLEET_ALLOWED_HOSTS",
    help: "Host names (comma-separated, no port) the HTTP server answers to besides IP addresses, localhost and Kubernetes Service names (*.svc); the --http-listen host is added when it is a name. Any other Host gets 421: a web page that re-points its own name here (DNS rebinding) cannot read the API.",
  },
  "max-watchers": {
    kind: "integer",
    default: "256",
    min: 1,
    env: "TRAINFLEET_MAX_WATCHERS",
    help: "Status event streams (GET /v1/jobs/JOB/watch) open at once at most; one more gets 503 with Retry-After.",
  },
} as const;

/** The tokens of --read-token-file and --control-token-file (files win), else of TRAINFLEET_READ_TOKEN and TRAINFLEET_CONTROL_TOKEN. */
export function accessTokens(values: Record<string, FlagValue>, env: Readonly<Record<string, string | undefined>>) {
  const token = (right: "read" | "control") => {
    const file = values[`${right}-token-file`] as string | undefined;
    const variable = `TRAINFLEET_${right.toUpperCase()}_TOKEN`;
    if (file !== undefined) return { token: readTokenFile(file, `--${right}-token-file`), source: `--${right}-token-file ${file}` };
    const given = env[variable]?.trim();
    return given === undefined || given === "" ? undefined : { token: given, source: variable };
  };
  const read = token("read");
  const control = token("control");
  return {
    ...(read === undefined ? {} : { read: read.token }),
    ...(control === undefined ? {} : { control: control.token }),
    sources: { ...(read === undefined ? {} : { read: read.source }), ...(control === undefined ? {} : { control: control.source }) },
  };
}

/** The names of --allowed-hosts, each checked to be a host name alone. */
export function allowedHostNames(text: string | undefined): string[] {
  const names = (text ?? "")
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name !== "");
  for (const name of names)
    if (!/^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?$/.test(name))
      throw new UsageError(
        `--allowed-hosts: "${name}" is not a host name; give names alone, comma-separated (coordinator.example.com,other), without a scheme or port`,
      );
  return names;
}

/** With --resume the job is the checkpoint's: no job flag may say otherwise. */
export function refuseJobFlagsWithResume(values: Record<string, FlagValue>): void {
  const given = givenJobFlags(values);
  if (given.length > 0) throw new UsageError(`--resume continues the checkpoint's job as it was; drop --${given.join(", --")}`);
}

export const coordinatorCommand: Command = {
  name: "coordinator",
  usage: "trainfleet coordinator [--listen HOST:PORT] [job flags | --resume CHECKPOINT]",
  summary:
    "Runs the coordinator of one job: it waits for the parameter-server shards and workers to register, plans ranks, shard ranges and every step's samples, evaluates the test set at the end, and exits 0 when the job succeeds, 20 when it failed the job itself (a policy gave up: the reason is in its final status and in --termination-message-file), 1 on an error of its own and 143 when SIGTERM stopped the job. With --no-job it waits for a JobSpec over gRPC (JobService.SubmitJob). With --checkpoint-dir it checkpoints (every --checkpoint-every steps, and on SIGTERM after the steps handed out); --resume continues a job from a checkpoint exactly.",
  flags: {
    listen: {
      kind: "string",
      default: "127.0.0.1:7070",
      env: "TRAINFLEET_LISTEN",
      help: "host:port of the gRPC server; port 0 picks a free one.",
    },
    "http-listen": {
      kind: "string",
      default: "127.0.0.1:7080",
      env: "TRAINFLEET_HTTP_LISTEN",
      help: 'host:port of the HTTP status API (GET /v1/jobs/JOB, /v1/jobs/JOB/watch, /v1/jobs/JOB/workers, /metrics, /healthz, /readyz); port 0 picks a free one, "" turns it off. The URL is logged.',
    },
    "linger-ms": {
      kind: "integer",
      default: "0",
      env: "TRAINFLEET_LINGER_MS",
      help: "After the job ends, keep serving its final status (HTTP and gRPC) this long before exiting; SIGTERM ends the wait.",
    },
    "output-dir": {
      kind: "string",
      env: "TRAINFLEET_OUTPUT_DIR",
      help: "Folder (made when missing) to write the trained parameters to (parameters.f32 and parameters.json) and the trained model (model.json and weights.bin, which tf.loadLayersModel loads), and, when the job ends either way, its final status as the status API serves it (status.json).",
    },
    "no-job": { kind: "boolean", help: "Start without a job and wait for JobService.SubmitJob." },
    "checkpoint-dir": {
      kind: "string",
      env: "TRAINFLEET_CHECKPOINT_DIR",
      help: "Folder for checkpoints, reachable by every shard (shard-<i>-v<step>.ckpt, checkpoint-<step>.json, latest.json; the last 2 are kept). Without it: no checkpoints, not even on SIGTERM; with --resume it defaults to the checkpoint's folder.",
    },
    resume: {
      kind: "string",
      env: "TRAINFLEET_RESUME",
      help: "Resume from this checkpoint manifest, or a checkpoint folder's latest.json: every file's sha256 is checked first, and the job continues exactly (its spec is the checkpoint's, so give no job flags).",
    },
    "ledger-audit": {
      kind: "string",
      env: "TRAINFLEET_LEDGER_AUDIT",
      help: "Append one JSON line per completed step to this file: {step, epoch, generation, sampleIndices: [[...] per rank]}, to audit that every sample of an epoch is used exactly once (also across a resume).",
    },
    "termination-message-file": {
      kind: "string",
      env: "TRAINFLEET_TERMINATION_MESSAGE_FILE",
      help: 'When the job ends by itself, write its outcome here as one JSON object ({"kind":"trainfleet.dev/job-end","phase","reason","message"}, at most 4096 bytes), for whoever reads it after the process has exited. Default: /dev/termination-log when it exists, the file Kubernetes gives every container: the operator reads it from the pod\'s status to fail the job with the coordinator\'s reason instead of restarting it.',
    },
    "state-file": {
      kind: "string",
      env: "TRAINFLEET_STATE_FILE",
      help: "Where the coordinator saves the job's state (spec, checkpoint folder, generation) so that a coordinator started again after a crash resumes the job from its newest checkpoint. Default: NATS KV bucket trainfleet_coordinators with --nats-url, else coordinator-state.json in --checkpoint-dir; none without either.",
    },
    ...accessFlags,
    ...natsUrlFlag,
    ...natsCredentialsFlag,
    ...leaseFlag,
    ...tlsFlags,
    ...jobFlags,
    ...commonFlags,
  },
  async run({ values, logger: given, signal, workDone, env }) {
    // First: with NATS credentials, everything after logs through a logger that redacts them.
    const { natsUrl, logger } = natsSettings(values, given);
    // Credentials are read and checked before anything listens (a wrong file names its flag).
    const security = await transportSecurity(values, logger, { roles: ["coordinator"] });
    const resume = values.resume as string | undefined;
    if (resume !== undefined) refuseJobFlagsWithResume(values);
    // The job is resolved here, once, where it enters this process (job flags, --spec or
    // TRAINFLEET_SPEC; a spec file is checked even when `trainfleet run` or the operator
    // wrote it), and runCoordinator takes the ResolvedJobSpec as it is. A resumed job's
    // spec is the checkpoint's, which runCoordinator reads and checks.
    const spec: ResolvedJobSpec | undefined =
      values["no-job"] === true || resume !== undefined ? undefined : await jobSpecFromFlags(values);
    /** The job ended by itself (succeeded, or failed by a policy), before any signal. */
    let endedByItself = false;
    // Loaded here, not at the top: every process runs this file's module for its flags.
    const { runCoordinator } = await import("@trainfleet/coordinator");
    const status = await runCoordinator({
      listen: values.listen as string,
      spec,
      leaseMs: values["lease-ms"] as number,
      outputDir: values["output-dir"] as string | undefined,
      checkpointDir: values["checkpoint-dir"] as string | undefined,
      resume,
      ledgerAuditPath: values["ledger-audit"] as string | undefined,
      stateFile: values["state-file"] as string | undefined,
      httpListen: values["http-listen"] as string | undefined,
      tokens: accessTokens(values, env),
      security,
      metricsOpen: values["metrics-open"] === true,
      allowedHosts: allowedHostNames(values["allowed-hosts"] as string | undefined),
      maxWatchers: values["max-watchers"] as number,
      lingerMs: values["linger-ms"] as number,
      natsUrl,
      logger,
      signal,
      // `trainfleet run` starts us with an IPC channel and waits for the addresses.
      onListening: (address, statusUrl) => process.send?.({ type: "listening", address, statusUrl }),
      // Once the job has ended, SIGTERM only cuts the lingering short: the exit code is the job's.
      onJobEnded: () => {
        endedByItself = !signal.aborted;
        workDone();
      },
      // The coordinator checks the job's own files on the cpu backend: it pins their layout; each worker checks its own backend.
      pinArtifacts: (spec) => pinArtifacts(spec, "cpu", logger),
      writeModel: (spec, parameters, folder) => writeModel(spec, parameters, folder, logger),
    });
    // Stopped by a signal: the CLI exits 143, and the operator starts the coordinator again (a crash, as far as the job goes).
    if (!endedByItself) return 1;
    writeFinalWord(values["termination-message-file"] as string | undefined, status, logger);
    return status.phase === JobPhase.SUCCEEDED ? 0 : jobFailedExitCode;
  },
};

/**
 * The job's outcome, for a supervisor that reads it after the process exited: the Kubernetes
 * operator, from the pod's termination message (k8s/src/coordinator-exit.ts). The exit code says
 * it too, so a file that cannot be written is only logged.
 */
function writeFinalWord(path: string | undefined, status: JobStatus, logger: Logger): void {
  const target = path ?? (existsSync(defaultTerminationMessagePath) ? defaultTerminationMessagePath : undefined);
  if (target === undefined) return;
  const succeeded = status.phase === JobPhase.SUCCEEDED;
  const word = {
    phase: succeeded ? "Succeeded" : "Failed",
    reason: status.reason || (succeeded ? "Completed" : "CoordinatorFailed"),
    message: status.message,
  } as const;
  try {
    writeFileSync(target, terminationMessage(word));
  } catch (error) {
    logger.warn(
      { path: target, err: TrainfleetError.from(error).message },
      "could not write the job's outcome to --termination-message-file; the exit code still says it",
    );
  }
}
