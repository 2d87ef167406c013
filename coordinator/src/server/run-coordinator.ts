/**
 * A coordinator process: serve gRPC (and the HTTP status API), run one job to its end,
 * then let members read Stop.
 */

import { dirname, join } from "node:path";
import type { JobEvent, JobStatus, RunningServer, StepMetrics, TransportSecurity } from "@trainfleet/proto";
import { Code, JobEventKind, statusPaths, TrainfleetError } from "@trainfleet/proto";
import type { LogContext, Logger } from "@trainfleet/runtime";
import { abortableDelay, logContext } from "@trainfleet/runtime";
import type { ResolvedJobSpec } from "@trainfleet/spec";
import { loadCheckpoint } from "../checkpoints/checkpoint-store.js";
import { startPoint } from "../checkpoints/restart-point.js";
import type { EventBus } from "../events/event-bus.js";
import { InProcessEventBus } from "../events/in-process-event-bus.js";
import { createNatsEventBus } from "../events/nats-event-bus.js";
import { Coordinator } from "../job/coordinator.js";
import { writeFinalStatus } from "../job/final-status.js";
import { saveParameters } from "../job/save-parameters.js";
import { fileStateStore } from "../state/file-state-store.js";
import { natsStateStore } from "../state/nats-state-store.js";
import type { StateStore } from "../state/state-store.js";
import type { ApiTokenOptions } from "../status/api-tokens.js";
import { ApiTokens } from "../status/api-tokens.js";
import { startStatusHttpServer } from "../status/status-http-server.js";
import { ledgerAuditFile } from "../steps/ledger-audit.js";
import type { PinArtifacts } from "./coordinator-server.js";
import { startCoordinatorServer } from "./coordinator-server.js";

export interface CoordinatorProcessOptions {
  listen: string;
  /** A spec resolved by resolveJobSpec, or none to wait for SubmitJob. */
  spec?: ResolvedJobSpec | undefined;
  leaseMs: number;
  /** Where to write the trained parameters, and the final status (status.json) when the job ends; nothing is written when absent. */
  outputDir?: string | undefined;
  logger: Logger;
  /**
   * Aborting it (SIGTERM) stops the job: with a checkpoint folder, after the steps handed
   * out and a just-in-time checkpoint; then every member is told to stop.
   */
  signal: AbortSignal;
  /** Where checkpoints go; none: no checkpoints (with `resume`: the checkpoint's folder). */
  checkpointDir?: string | undefined;
  /** A checkpoint manifest or folder to resume from; the job is the checkpoint's (give no spec). */
  resume?: string | undefined;
  /** host:port of the HTTP status API and /metrics (port 0 picks one); none or "": no HTTP server. */
  httpListen?: string | undefined;
  /**
   * The bearer tokens of the status API and JobService: `read` for the status (HTTP, GetJob,
   * WatchJob), `control` for SubmitJob (and the status). None: both are open to anyone who
   * reaches them, and every start logs a warning that says so.
   */
  tokens?: ApiTokenOptions | undefined;
  /**
   * Mutual TLS with the job's CA for the gRPC APIs and the final pull of the parameters,
   * and the member calls' role checks (member-access.ts). None: plaintext, and every
   * start logs a warning that says so.
   */
  security?: TransportSecurity | undefined;
  /** Serve /metrics without a token (for a Prometheus that scrapes without one). */
  metricsOpen?: boolean | undefined;
  /** Host names the HTTP server answers to besides IP addresses, localhost and *.svc (DNS rebinding). */
  allowedHosts?: readonly string[] | undefined;
  /** Status event streams open at once at most (default 256). */
  maxWatchers?: number | undefined;
  /** After the job ends, keep serving the status APIs this long (SIGTERM cuts it short). */
  lingerMs?: number | undefined;
  /**
   * NATS server(s) for job events (trainfleet.jobs.<job>.events/.metrics and the
   * TRAINFLEET_JOBS stream); none: an in-process bus. An unreachable server is logged and
   * retried; it never stops the job.
   */
  natsUrl?: string | undefined;
  /** Append a JSON line per completed step with the samples it consumed (a debug option). */
  ledgerAuditPath?: string | undefined;
  /** An event bus of the caller's (overrides natsUrl); it is closed when the process ends. */
  events?: EventBus | undefined;
  /** The gRPC address, and the job's status URL when the HTTP server runs. */
  onListening?: (address: string, statusUrl?: string) => void;
  /** The job has ended (before any lingering): the process's work is done. */
  onJobEnded?: () => void;
  /**
   * Where the coordinator's state is saved for a restart (a file). Default: NATS KV when
   * natsUrl is set, else `coordinator-state.json` in the checkpoint folder; none without either.
   */
  stateFile?: string | undefined;
  /**
   * Reads the files a job brings (its Layers model, its dataset's manifests) and pins what
   * they hold into the spec (spec.model.layers.artifact, spec.dataset.facts); given a
   * pinned spec (a checkpoint's, a restarted coordinator's), checks that the files still
   * hold it. The caller gives it: the coordinator itself reads no model (no tf.js here).
   */
  pinArtifacts?: PinArtifacts | undefined;
  /** Writes the trained model beside parameters.f32 (model.json and its weights), from the spec and the parameters. */
  writeModel?: ((spec: ResolvedJobSpec, parameters: Float32Array, folder: string) => Promise<void>) | undefined;
}

export async function runCoordinator(options: CoordinatorProcessOptions): Promise<JobStatus> {
  const { logger, outputDir } = options;
  const tokens = options.tokens ?? {};
  // Bad tokens stop the process before anything listens.
  announceAccess(new ApiTokens(tokens), options, logger);
  // Every file of the checkpoint is checked before anything listens.
  const resume = options.resume === undefined ? undefined : await loadCheckpoint(options.resume);
  if (resume !== undefined && options.spec !== undefined)
    throw new TrainfleetError(
      Code.INVALID_ARGUMENT,
      "give a job spec or a checkpoint to resume, not both: a resumed job is the checkpoint's",
    );
  if (resume !== undefined)
    logger.info(
      { path: resume.path, step: resume.manifest.version, jobId: resume.manifest.jobId },
      "resuming from a checkpoint; every file matches its sha256",
    );
  const pin = options.pinArtifacts;
  const givenSpec = resume?.manifest.spec ?? options.spec;
  const given = {
    spec: givenSpec === undefined || pin === undefined ? givenSpec : await pin(givenSpec),
    resume,
    checkpointDir: options.checkpointDir ?? (resume === undefined ? undefined : dirname(resume.path)),
  };
  const stores = await openStateStores(options, given.spec?.jobId, given.checkpointDir, logger);
  const stateStore = stores[0];
  const { spec, checkpointDir, restartedAt, ...start } = await startPoint(given, stores, logger).catch(async (error: unknown) => {
    await Promise.all(stores.map((store) => store.close()));
    throw error;
  });
  // Only the first is saved to; the others were only read.
  await Promise.all(stores.slice(1).map((store) => store.close()));
  const fresh = start.resume === undefined && restartedAt === undefined;
  const events =
    options.events ??
    (options.natsUrl
      ? createNatsEventBus({ url: options.natsUrl, logger, freshJobId: fresh ? spec?.jobId : undefined })
      : new InProcessEventBus());
  const coordinator = new Coordinator({
    events: followedBy(logContext, events),
    spec,
    leaseMs: options.leaseMs,
    logger,
    ...(outputDir === undefined
      ? {}
      : { onTrained: (job) => saveParameters(outputDir, job, { writeModel: options.writeModel, security: options.security }) }),
    checkpointDir,
    resume: start.resume,
    restartedAt,
    stateStore,
    ...(options.ledgerAuditPath === undefined ? {} : { ledgerAudit: ledgerAuditFile(options.ledgerAuditPath) }),
  });
  // Ready while the gRPC server takes calls; the HTTP server comes first so that a port
  // it cannot get stops the process before anything else listens.
  const serving = { grpc: false, closing: false };
  const http = options.httpListen
    ? await startStatusHttpServer(coordinator, {
        listen: options.httpListen,
        logger,
        tokens,
        metricsOpen: options.metricsOpen,
        allowedHosts: options.allowedHosts,
        maxWatchers: options.maxWatchers,
        readiness: () =>
          serving.grpc && !serving.closing
            ? { ready: true, reason: "ok" }
            : { ready: false, reason: serving.closing ? "the coordinator is shutting down" : "the gRPC server is not listening yet" },
      }).catch(async (error: unknown) => {
        await events.close(0);
        throw error;
      })
    : undefined;
  let server: RunningServer;
  try {
    server = await startCoordinatorServer(coordinator, options.listen, { pinArtifacts: pin, tokens, security: options.security });
  } catch (error) {
    await Promise.all([http?.close(0), events.close(0)]);
    throw error;
  }
  serving.grpc = true;
  logger.info({ address: server.address }, "coordinator listening");
  const jobId = spec?.jobId;
  const statusUrl = http === undefined ? undefined : `${http.url}${jobId === undefined ? "" : statusPaths.job(jobId)}`;
  if (http !== undefined) logger.info({ url: statusUrl, metrics: `${http.url}${statusPaths.metrics}` }, "status API listening");
  options.onListening?.(server.address, statusUrl);
  // Leases, pause deadlines and stragglers are checked at least twice a second.
  const checkEveryMs = Math.max(25, Math.min(500, Math.floor(options.leaseMs / 4)));
  let lastCheck = performance.now();
  const leaseTimer = setInterval(() => {
    const now = performance.now();
    const lateMs = now - lastCheck - checkEveryMs;
    lastCheck = now;
    // This process did not run for a while (a long synchronous task, such as writing a large
    // trained model): the members' heartbeats of that time wait unread in its sockets, and the
    // timers run before they are read. The members get that time back before leases are judged.
    if (lateMs > options.leaseMs / 4) coordinator.extendLeases(lateMs);
    coordinator.checkLeases();
  }, checkEveryMs);
  const onAbort = () => void coordinator.terminate();
  options.signal.addEventListener("abort", onAbort, { once: true });
  try {
    const final = await coordinator.done();
    options.onJobEnded?.();
    if (outputDir !== undefined) await saveFinalStatus(outputDir, final, logger);
    const lingerMs = options.lingerMs ?? 0;
    if (lingerMs > 0 && !options.signal.aborted) {
      logger.info({ lingerMs }, "the job has ended; serving its final status a while longer");
      await abortableDelay(lingerMs, options.signal).catch(() => {});
    }
    return final;
  } finally {
    clearInterval(leaseTimer);
    options.signal.removeEventListener("abort", onAbort);
    serving.closing = true;
    // Open assignment and watch streams end once drained, so members read their Stop.
    // The bus sends what is queued (the final event included) within the same 5 s.
    await Promise.all([server.close(5_000), http?.close(5_000), events.close(5_000), stateStore?.close()]);
  }
}

/**
 * The status the job ended with, into the output folder beside the model: whoever looks there
 * later learns how the job ended. The job has ended whatever happens here, so a failed write
 * is logged, not thrown.
 */
async function saveFinalStatus(folder: string, status: JobStatus, logger: Logger): Promise<void> {
  try {
    const path = await writeFinalStatus(folder, status);
    logger.info({ path }, "the job's final status written");
  } catch (error) {
    logger.error({ folder, err: TrainfleetError.from(error).message }, "could not write the job's final status to --output-dir");
  }
}

/** Says, on every start, who may read and control the job: without tokens, a warning that names the flags. */
function announceAccess(tokens: ApiTokens, options: CoordinatorProcessOptions, logger: Logger): void {
  if (!tokens.required) {
    logger.warn(
      { tokens: [] },
      "the status API and JobService are open to anyone who reaches them: give the coordinator --read-token-file and --control-token-file (or TRAINFLEET_READ_TOKEN and TRAINFLEET_CONTROL_TOKEN)",
    );
    return;
  }
  logger.info(
    { tokens: tokens.configured, metricsOpen: options.metricsOpen === true },
    "the status API and JobService need a bearer token (/healthz, /readyz and the dashboard page do not)",
  );
}

/**
 * Where the coordinator's state is kept, the one saved to first: options.stateFile; else
 * NATS KV (keyed by job: a coordinator waiting for SubmitJob has no key yet) and the
 * checkpoint folder's file, which is also where a predecessor may have saved while NATS
 * was unreachable (then the file is saved to, and said so). None: nowhere durable.
 */
async function openStateStores(
  options: CoordinatorProcessOptions,
  jobId: string | undefined,
  checkpointDir: string | undefined,
  logger: Logger,
): Promise<StateStore[]> {
  if (options.stateFile !== undefined) return [fileStateStore(options.stateFile)];
  const file = checkpointDir === undefined ? [] : [fileStateStore(join(checkpointDir, "coordinator-state.json"))];
  if (!options.natsUrl || jobId === undefined) return file;
  try {
    return [await natsStateStore({ url: options.natsUrl, jobId }), ...file];
  } catch (error) {
    const where = file[0]?.description ?? "nowhere (no --checkpoint-dir): a restarted coordinator will start the job afresh";
    logger.warn({ err: TrainfleetError.from(error).message }, `the coordinator's state goes to ${where} instead of NATS KV`);
    return file;
  }
}

/**
 * The bus, with the log context following what it carries: the job's events and per-step
 * metrics, published as they happen, hold its jobId, generation and completed steps, so
 * every line logged after one says where the job is (without a hook in the coordinator or
 * a status built per line). Before the first generation the context has the jobId only.
 */
function followedBy(context: LogContext, bus: EventBus): EventBus {
  const follow = ({ jobId, generation, step }: JobEvent | StepMetrics): void =>
    void context.set(generation === 0 ? { jobId } : { jobId, generation, step });
  return {
    publishEvent(event) {
      // A checkpoint's event carries the checkpoint's step, not the job's.
      if (event.kind === JobEventKind.CHECKPOINT_WRITTEN) context.set({ jobId: event.jobId });
      else follow(event);
      bus.publishEvent(event);
    },
    publishMetrics(metrics) {
      follow(metrics);
      bus.publishMetrics(metrics);
    },
    close: (timeoutMs) => bus.close(timeoutMs),
  };
}
