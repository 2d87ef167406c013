/**
 * A parameter-server shard process: serve gRPC, join the job, follow the coordinator until
 * Stop. With a checkpoint folder in its assignment it writes its checkpoint slices there
 * (and finishes writing them before it exits); with a restore it starts from one.
 *
 * Each generation: the ShardAssignment closes the shard, which reports the version it
 * holds (ReportGeneration); open_generation names the version to go on from, and a shard
 * that cannot get there reports why and stays closed.
 */
import { MemberRole, TrainfleetError, joinJob, startMetricsServer } from "@trainfleet/proto";
import type { Logger, MemberSession, RunningHttpServer, ShardAssignment } from "@trainfleet/proto";
import { createCheckpointWriter, readShardCheckpoint } from "./checkpoint-files.js";
import type { CheckpointWriter, CheckpointWritten } from "./checkpoint-files.js";
import { optimizerKind } from "./optimizer.js";
import { ParameterShard } from "./parameter-shard.js";
import { shardConfigFrom } from "./shard-config.js";
import { startShardServer } from "./shard-server.js";
import { shardHeartbeatStats, shardMetrics } from "./shard-metrics.js";
import { startDataServer } from "./tcp-data-server.js";

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
}

export async function runShard(options: ShardOptions): Promise<void> {
  const logger = options.logger.child({ psShard: options.shardIndex });
  const shard = options.shard ?? new ParameterShard();
  const server = await startShardServer(shard, options.listen, logger);
  // The data channel listens on the same host as the gRPC service, on a port of its own.
  const data = await startDataServer(shard, server.address.slice(0, server.address.lastIndexOf(":")), logger);
  logger.info({ address: server.address, dataAddress: data.address }, "parameter-server shard listening");
  let metrics: RunningHttpServer | undefined;
  try {
    if (options.metricsListen) {
      metrics = await startMetricsServer(options.metricsListen, shardMetrics(shard, options.shardIndex), logger);
      logger.info({ url: `${metrics.url}/metrics` }, "metrics listening");
    }
    const session = await joinJob({
      coordinator: options.coordinator,
      register: { role: MemberRole.PARAMETER_SERVER, address: server.address, dataAddress: data.address, shardIndex: options.shardIndex, host: options.host },
      logger,
      signal: options.signal,
      heartbeatFields: () => ({ shardStats: shardHeartbeatStats(shard) }),
    });
    let writer: CheckpointWriter | undefined;
    const report = (written: CheckpointWritten) => reportCheckpoint(session, written, options.signal, logger);
    const tellGeneration = (fields: GenerationReport) => reportGeneration(session, fields, options.signal, logger);
    const unsubscribe = shard.onSnapshot((snapshot) => writer?.write(snapshot));
    try {
      for await (const assignment of session.assignments()) {
        if (assignment.kind.case === "shard") {
          const { checkpointDir } = assignment.kind.value;
          if (checkpointDir !== "") writer ??= createCheckpointWriter({ folder: checkpointDir, shardIndex: options.shardIndex, logger, report });
          const { generation } = assignment.kind.value;
          try {
            // Closed now, unless it repeats the generation it is open for (then nothing changed, nothing to report).
            if (!(await configure(shard, assignment.kind.value, options.shardIndex, logger))) continue;
          } catch (error) {
            const message = TrainfleetError.from(error).message;
            logger.error({ generation }, message);
            await tellGeneration({ generation, version: shard.version, error: message });
            throw error;
          }
          await tellGeneration({ generation, version: shard.version });
        } else if (assignment.kind.case === "openGeneration") {
          const { generation, version } = assignment.kind.value;
          try {
            shard.openGeneration(generation, version);
            logger.info({ generation, version }, "generation open");
          } catch (error) {
            // The shard stays closed; the coordinator decides what comes next.
            const message = TrainfleetError.from(error).message;
            logger.error({ generation, version: shard.version }, message);
            await tellGeneration({ generation, version: shard.version, error: message });
          }
        } else if (assignment.kind.case === "checkpoint") {
          const { version } = assignment.kind.value;
          try {
            shard.requestSnapshot(version);
          } catch (error) {
            const message = TrainfleetError.from(error).message;
            logger.error({ version }, message);
            await report({ version, generation: shard.generation, path: "", sha256: "", bytes: 0, error: message });
          }
        } else if (assignment.kind.case === "stop") {
          logger.info({ reason: assignment.kind.value.reason, version: shard.version, ...shard.stats }, "stopping");
          break;
        }
      }
    } finally {
      unsubscribe();
      // Checkpoint slices already taken are written and reported before the shard goes.
      await writer?.flush();
      session.close();
    }
  } finally {
    await Promise.all([server.close(), data.close(), metrics?.close()]);
  }
}

/**
 * Takes the assignment; true when the shard closed for a new generation (false: it repeats
 * the one it is open for). A restore is read and checked before the shard is configured,
 * and applied while it is closed, so the shard never serves a version it then replaces;
 * only the first assignment restores (later ones find the shard trained and in the job).
 */
async function configure(shard: ParameterShard, assignment: ShardAssignment, shardIndex: number, logger: Logger): Promise<boolean> {
  const config = shardConfigFrom(assignment);
  const restore = shard.config === undefined ? assignment.restore : undefined;
  const snapshot =
    restore === undefined ? undefined : await readShardCheckpoint(restore, { shardIndex, jobId: config.jobId, range: config.range, optimizer: optimizerKind(config.optimizer) });
  shard.configure(config);
  if (snapshot !== undefined) {
    shard.restore(snapshot);
    logger.info({ path: restore!.path, version: snapshot.version }, "shard restored from its checkpoint");
  }
  logger.info({ jobId: config.jobId, generation: config.generation, worldSize: config.worldSize, begin: config.range.begin, end: config.range.end, version: shard.version, phase: shard.phase }, "shard configured");
  return shard.phase === "closed";
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
    logger.warn({ generation: report.generation, err: TrainfleetError.from(error).message }, "could not report the generation to the coordinator");
  }
}

/** Tells the coordinator about a checkpoint slice; a failure to tell is logged (the coordinator's wait for it is bounded). */
async function reportCheckpoint(session: MemberSession, written: CheckpointWritten, signal: AbortSignal, logger: Logger): Promise<void> {
  try {
    await session.coordinator.reportCheckpoint({ memberId: session.memberId, ...written, bytes: BigInt(written.bytes) }, { signal, timeoutMs: 10_000 });
  } catch (error) {
    logger.warn({ version: written.version, err: TrainfleetError.from(error).message }, "could not report the checkpoint slice to the coordinator");
  }
}
