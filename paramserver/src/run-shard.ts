/**
 * A parameter-server shard process: serve gRPC, join the job, follow the coordinator until
 * Stop. With a checkpoint folder in its assignment it writes its checkpoint slices there
 * (and finishes writing them before it exits); with a restore it starts from one.
 *
 * Each generation: the ShardAssignment closes the shard, which reports the version it
 * holds (ReportGeneration); open_generation names the version to go on from, and a shard
 * that cannot get there reports why and stays closed. Any generation's assignment may
 * carry a restore (a restarted coordinator, or this shard restarted, restores every shard
 * to the last checkpoint, or to the initial parameters when there is none yet).
 *
 * The coordinator going away (its assignment stream fails, or a heartbeat finds that it
 * no longer knows this member: it was restarted) does not end the process: the shard, its
 * servers and its pending checkpoint writes stay, and it registers again, retrying for a
 * while (joinJob); only a coordinator that stays away ends it, non-zero. So does a Stop
 * that says to rejoin. A Stop without it ends the process normally.
 */

import type { DataChannelLimitOptions } from "@trainfleet/dataplane";
import { shardPeer, startDataServer, startShardServer } from "@trainfleet/dataplane";
import type { AssignmentsResponse, ShardAssignment, ShardRestore, TransportSecurity } from "@trainfleet/proto";
import { Code, invalidField, MemberRole, peerMismatch, TrainfleetError } from "@trainfleet/proto";
import type { Logger, MemberSession, RunningHttpServer } from "@trainfleet/runtime";
import { abortableDelay, joinJob, logContext, startMetricsServer } from "@trainfleet/runtime";
import type { CheckpointWriter, CheckpointWritten } from "./checkpoint-files.js";
import { createCheckpointWriter, readShardCheckpoint } from "./checkpoint-files.js";
import { optimizerKind } from "./optimizer.js";
import { ParameterShard } from "./parameter-shard.js";
import type { ShardConfig } from "./shard-config.js";
import { shardConfigFrom } from "./shard-config.js";
import { shardHeartbeatStats, shardMetrics } from "./shard-metrics.js";
import type { ShardState } from "./shard-snapshot.js";
import { initialShardState } from "./shard-snapshot.js";

export interface ShardOptions {
  coordinator: string;
  /** host:port to listen on; port 0 picks a free one. */
  listen: string;
  shardIndex: number;
  host: string;
  logger: Logger;
  signal: AbortSignal;
  /** The shard to serve; colocated placement passes one that its worker also reaches in memory. */
  shard?: ParameterShard;
  /** host:port for GET /metrics (Prometheus) and /healthz; none or "": no metrics server. */
  metricsListen?: string | undefined;
  /**
   * The shard's credentials (parameter-server ps-{shardIndex} of its job): its gRPC service and
   * data channel are mutual TLS, and so are its calls to the coordinator. Plaintext when absent.
   */
  security?: TransportSecurity | undefined;
  /** Bounds on the TCP data channel (connections, HELLO and idle timeouts, pipelined requests); unset ones take dataplane's defaults. */
  dataChannel?: DataChannelLimitOptions | undefined;
}

/** One registration with the coordinator, and what cuts its assignment stream and heartbeats short. */
interface Registration {
  session: MemberSession;
  cut: AbortController;
}

/** How a session ended: told to stop, or why the shard registers again. */
type SessionEnd = { stop: true } | { rejoin: string };

/** What the shard's sessions share: it outlives each of them. */
interface ShardProcess {
  shard: ParameterShard;
  shardIndex: number;
  logger: Logger;
  signal: AbortSignal;
  /** From the first assignment that names a checkpoint folder on. */
  writer: CheckpointWriter | undefined;
  report(written: CheckpointWritten): Promise<void>;
}

/** Assignment stream failures that mean the coordinator went away or lost track of this member, not that the shard is wrong. */
const coordinatorGone = new Set<number>([Code.UNAVAILABLE, Code.CANCELLED, Code.INTERNAL, Code.NOT_FOUND]);

/** Between one session's end and the next registration: a coordinator that keeps dropping the stream is not hammered. */
const rejoinPauseMs = 200;

export async function runShard(options: ShardOptions): Promise<void> {
  const logger = options.logger.child({ psShard: options.shardIndex });
  const shard = options.shard ?? new ParameterShard();
  const { security } = options;
  // Workers check that a shard's certificate names its index: one for another index would be refused by all of them.
  const wrongIdentity = security === undefined ? undefined : peerMismatch(security.identity, shardPeer(options.shardIndex));
  if (wrongIdentity !== undefined)
    throw new TrainfleetError(Code.INVALID_ARGUMENT, `shard ${options.shardIndex} cannot serve with this certificate: ${wrongIdentity}`);
  const server = await startShardServer(shard, options.listen, logger, security);
  // The data channel listens on the same host as the gRPC service, on a port of its own.
  const data = await startDataServer(
    shard,
    server.address.slice(0, server.address.lastIndexOf(":")),
    logger,
    security,
    options.dataChannel,
  );
  logger.info(
    { address: server.address, dataAddress: data.address, tls: security === undefined ? "off" : "mutual" },
    "parameter-server shard listening",
  );
  let metrics: RunningHttpServer | undefined;
  // Every line of this process says which shard, and from the first assignment on its generation and version (read as each line is written).
  logContext.set({ psShard: options.shardIndex });
  const forgetShard = logContext.set({
    generation: () => (shard.config === undefined ? undefined : shard.generation),
    step: () => (shard.config === undefined ? undefined : shard.version),
  });
  try {
    if (options.metricsListen) {
      metrics = await startMetricsServer(options.metricsListen, shardMetrics(shard, options.shardIndex), logger);
      logger.info({ url: `${metrics.url}/metrics` }, "metrics listening");
    }
    const register = async (): Promise<Registration> => {
      const cut = new AbortController();
      const session = await joinJob({
        coordinator: options.coordinator,
        register: {
          role: MemberRole.PARAMETER_SERVER,
          address: server.address,
          dataAddress: data.address,
          shardIndex: options.shardIndex,
          host: options.host,
        },
        logger,
        signal: AbortSignal.any([options.signal, cut.signal]),
        heartbeatFields: () => ({ shardStats: shardHeartbeatStats(shard) }),
        security,
      });
      logContext.set({ jobId: session.jobId });
      return { session, cut };
    };
    // The registration of the moment: a checkpoint slice written while the shard registers
    // again is reported through the new one (the old session's client is closed).
    let current = register();
    const proc: ShardProcess = {
      shard,
      shardIndex: options.shardIndex,
      logger,
      signal: options.signal,
      writer: undefined,
      report: (written) =>
        current.then(
          ({ session }) => reportCheckpoint(session, written, options.signal, logger),
          (error: unknown) =>
            logger.warn(
              { version: written.version, err: TrainfleetError.from(error).message },
              "could not report the checkpoint slice: not registered with a coordinator",
            ),
        ),
    };
    const unsubscribe = shard.onSnapshot((snapshot) => proc.writer?.write(snapshot));
    let registration: Registration | undefined;
    try {
      for (;;) {
        registration = await current;
        const end = await follow(registration, proc);
        if ("stop" in end || options.signal.aborted) break;
        logger.warn(
          { memberId: registration.session.memberId, reason: end.rejoin, version: shard.version, generation: shard.generation },
          "lost the coordinator; registering again",
        );
        endSession(registration);
        registration = undefined;
        try {
          await abortableDelay(rejoinPauseMs, options.signal);
        } catch {
          break; // asked to stop meanwhile
        }
        current = register();
      }
    } finally {
      unsubscribe();
      // Checkpoint slices already taken are written and reported before the shard goes.
      await proc.writer?.flush();
      if (registration !== undefined) endSession(registration);
    }
  } finally {
    await Promise.all([server.close(), data.close(), metrics?.close()]);
    // The getters hold the shard: let it go (a colocated worker's own values stay).
    forgetShard();
  }
}

function endSession({ session, cut }: Registration): void {
  cut.abort();
  session.close();
}

/** Follows one session's assignments until Stop, or until the coordinator goes away or drops this member. */
async function follow({ session, cut }: Registration, proc: ShardProcess): Promise<SessionEnd> {
  const { shard, logger, signal } = proc;
  // An eviction seen by a heartbeat cancels the stream, which may otherwise wait on a coordinator that has forgotten it.
  const onEvicted = () => cut.abort(session.evicted.reason);
  session.evicted.addEventListener("abort", onEvicted, { once: true });
  const tellGeneration = (fields: GenerationReport) => reportGeneration(session, fields, signal, logger);
  const stream = session.assignments()[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<AssignmentsResponse>;
      try {
        next = await stream.next();
      } catch (error) {
        if (signal.aborted) return { stop: true };
        if (session.evicted.aborted)
          return { rejoin: `the coordinator does not know this member: ${TrainfleetError.from(session.evicted.reason).message}` };
        const failure = TrainfleetError.from(error);
        if (!coordinatorGone.has(failure.code)) throw failure;
        return { rejoin: `the assignment stream failed: ${failure.message}` };
      }
      if (next.done) return signal.aborted ? { stop: true } : { rejoin: "the assignment stream ended without a Stop" };
      const { kind } = next.value;
      if (kind.case === "shard") {
        await takeShardAssignment(kind.value, proc, tellGeneration);
      } else if (kind.case === "openGeneration") {
        const { generation, version } = kind.value;
        try {
          shard.openGeneration(generation, version);
          // Its own step (the version it goes on from): in a colocated worker's process the shared log context may not have one yet.
          logger.info({ generation, version, step: version }, "generation open");
        } catch (error) {
          // The shard stays closed; the coordinator decides what comes next.
          const message = TrainfleetError.from(error).message;
          logger.error({ generation, version: shard.version }, message);
          await tellGeneration({ generation, version: shard.version, error: message });
        }
      } else if (kind.case === "checkpoint") {
        const { version } = kind.value;
        try {
          shard.requestSnapshot(version);
        } catch (error) {
          const message = TrainfleetError.from(error).message;
          logger.error({ version }, message);
          await proc.report({ version, generation: shard.generation, path: "", sha256: "", bytes: 0, error: message });
        }
      } else if (kind.case === "stop") {
        const { reason, rejoin } = kind.value;
        if (rejoin) return { rejoin: `told to stop (${reason}) and register again` };
        logger.info({ reason, version: shard.version, ...shard.stats }, "stopping");
        return { stop: true };
      }
    }
  } finally {
    session.evicted.removeEventListener("abort", onEvicted);
    // Cancels the call, unless it ended already.
    await stream.return?.(undefined);
  }
}

/** Configures (and restores) the shard, then tells the coordinator the version it holds; an assignment it cannot take is reported, then ends the process. */
async function takeShardAssignment(
  assignment: ShardAssignment,
  proc: ShardProcess,
  tellGeneration: (fields: GenerationReport) => Promise<void>,
): Promise<void> {
  const { shard, shardIndex, logger } = proc;
  const { checkpointDir, generation } = assignment;
  if (checkpointDir !== "") proc.writer ??= createCheckpointWriter({ folder: checkpointDir, shardIndex, logger, report: proc.report });
  try {
    // Closed now, unless it repeats the generation it is open for (then nothing changed, nothing to report).
    if (!(await configure(shard, assignment, shardIndex, logger))) return;
  } catch (error) {
    const message = TrainfleetError.from(error).message;
    logger.error({ generation }, message);
    await tellGeneration({ generation, version: shard.version, error: message });
    throw error;
  }
  await tellGeneration({ generation, version: shard.version });
}

/**
 * Takes the assignment; true when the shard closed for a new generation (false: it repeats
 * the one it is open for). A restore is read and checked before the shard is configured,
 * and applied while it is closed, so the shard never serves a version it then replaces.
 * An assignment that repeats the generation the shard took already changes nothing,
 * restore or not: it was applied when that generation began.
 */
async function configure(shard: ParameterShard, assignment: ShardAssignment, shardIndex: number, logger: Logger): Promise<boolean> {
  const config = await shardConfigFrom(assignment, shard.config);
  const repeat = shard.config !== undefined && shard.generation === config.generation;
  const restore = repeat ? undefined : assignment.restore;
  const state = restore === undefined ? undefined : await restoredState(restore, config, shardIndex);
  shard.configure(config);
  if (state !== undefined) {
    shard.restore(state);
    if (restore!.path === "") logger.info({ version: state.version }, "shard restored to the job's initial parameters");
    else logger.info({ path: restore!.path, version: state.version }, "shard restored from its checkpoint");
  }
  logger.info(
    {
      jobId: config.jobId,
      generation: config.generation,
      worldSize: config.worldSize,
      begin: config.range.begin,
      end: config.range.end,
      version: shard.version,
      phase: shard.phase,
    },
    "shard configured",
  );
  return shard.phase === "closed";
}

/** The state a ShardRestore names: its checkpoint file's, read and checked; with an empty path, the seeded initial state. */
async function restoredState(restore: ShardRestore, config: ShardConfig, shardIndex: number): Promise<ShardState> {
  if (restore.path === "") {
    if (restore.version !== 0) {
      throw invalidField(
        "restore.version",
        `an empty restore.path means the job's initial parameters at version 0, not version ${restore.version}; name the checkpoint file of version ${restore.version}, or send version 0`,
      );
    }
    return initialShardState(config);
  }
  return readShardCheckpoint(restore, { shardIndex, jobId: config.jobId, range: config.range, optimizer: optimizerKind(config.optimizer) });
}

/** ReportGenerationRequest's fields but the member id. */
interface GenerationReport {
  generation: number;
  version: number;
  error?: string;
}

/** Tells the coordinator the version the shard holds in a generation, or why it cannot take or open it; a failure to tell is logged. */
async function reportGeneration(session: MemberSession, report: GenerationReport, signal: AbortSignal, logger: Logger): Promise<void> {
  try {
    await session.coordinator.reportGeneration({ memberId: session.memberId, ...report }, { signal, timeoutMs: 10_000 });
  } catch (error) {
    logger.warn(
      { generation: report.generation, err: TrainfleetError.from(error).message },
      "could not report the generation to the coordinator",
    );
  }
}

/** Tells the coordinator about a checkpoint slice; a failure to tell is logged (the coordinator's wait for it is bounded). */
async function reportCheckpoint(session: MemberSession, written: CheckpointWritten, signal: AbortSignal, logger: Logger): Promise<void> {
  try {
    await session.coordinator.reportCheckpoint(
      { memberId: session.memberId, ...written, bytes: BigInt(written.bytes) },
      { signal, timeoutMs: 10_000 },
    );
  } catch (error) {
    logger.warn(
      { version: written.version, err: TrainfleetError.from(error).message },
      "could not report the checkpoint slice to the coordinator",
    );
  }
}
