/**
 * How a worker or a parameter-server shard joins a job: register with the coordinator
 * (retrying while it is unreachable), keep the lease alive by heartbeat, and read the
 * assignment stream. Shared by both roles so that membership behaves the same for each.
 * With the member's credentials every call is mutual TLS, and the coordinator must show a
 * certificate of the job's CA that names it the coordinator.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type {
  AssignmentsResponse,
  ClientOf,
  ParameterServerStatsSchema,
  RegisterRequestSchema,
  TransportSecurity,
} from "@trainfleet/proto";
import { Code, CoordinatorService, createClient, TrainfleetError } from "@trainfleet/proto";
import { abortableDelay } from "./abortable-delay.js";
import type { Logger } from "./logger.js";

export interface JoinOptions {
  coordinator: string;
  register: MessageInitShape<typeof RegisterRequestSchema>;
  logger: Logger;
  signal: AbortSignal;
  /** Give up registering after this long (the coordinator may still be starting). */
  connectTimeoutMs?: number;
  /** What each heartbeat carries besides the member id (a shard's counters). */
  heartbeatFields?: () => { shardStats?: MessageInitShape<typeof ParameterServerStatsSchema> };
  /** This member's credentials: mutual TLS with the coordinator. Plaintext when absent. */
  security?: TransportSecurity | undefined;
}

export interface MemberSession {
  readonly memberId: string;
  readonly jobId: string;
  readonly leaseMs: number;
  readonly coordinator: ClientOf<typeof CoordinatorService>;
  /** Aborted when a heartbeat says the coordinator marked this member lost: it is out of the job, and may register again. */
  readonly evicted: AbortSignal;
  assignments(): AsyncIterable<AssignmentsResponse>;
  close(): void;
}

const retryable = new Set<number>([Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED]);

export async function joinJob(options: JoinOptions): Promise<MemberSession> {
  const { logger, signal } = options;
  const coordinator = createClient(
    CoordinatorService,
    options.coordinator,
    options.security === undefined ? undefined : { security: options.security, server: { roles: ["coordinator"] } },
  );
  const deadline = Date.now() + (options.connectTimeoutMs ?? 60_000);
  let backoffMs = 100;
  for (;;) {
    try {
      const registered = await coordinator.register(options.register, { signal, timeoutMs: 5_000 });
      logger.info({ memberId: registered.memberId, jobId: registered.jobId }, "registered with the coordinator");
      return session(coordinator, registered.memberId, registered.jobId, registered.leaseMs, logger, signal, options.heartbeatFields);
    } catch (error) {
      const failure = TrainfleetError.from(error);
      if (!retryable.has(failure.code) || Date.now() + backoffMs > deadline || signal.aborted) {
        coordinator.close();
        throw new TrainfleetError(failure.code, `could not register with the coordinator at ${options.coordinator}: ${failure.message}`, {
          cause: failure,
        });
      }
      logger.debug({ err: failure.message, backoffMs }, "coordinator not reachable yet; retrying");
      await abortableDelay(backoffMs, signal);
      backoffMs = Math.min(backoffMs * 2, 2_000);
    }
  }
}

function session(
  coordinator: ClientOf<typeof CoordinatorService>,
  memberId: string,
  jobId: string,
  leaseMs: number,
  logger: Logger,
  signal: AbortSignal,
  heartbeatFields: JoinOptions["heartbeatFields"],
): MemberSession {
  const evicted = new AbortController();
  // Heartbeats still in flight when the session closes are cancelled, not reported as failures.
  const closed = new AbortController();
  const heartbeatSignal = AbortSignal.any([signal, closed.signal]);
  const heartbeat = setInterval(
    () => {
      coordinator
        .heartbeat({ ...heartbeatFields?.(), memberId }, { signal: heartbeatSignal, timeoutMs: leaseMs })
        .catch((error: unknown) => {
          if (closed.signal.aborted) return;
          const failure = TrainfleetError.from(error);
          logger.warn({ err: failure.message }, "heartbeat failed");
          if (failure.code === Code.NOT_FOUND) evicted.abort(failure);
        });
      // A third of the lease keeps it alive; at least once a second, as a shard's heartbeat
      // also carries the step-deadline counts that stragglers are evicted by.
    },
    Math.max(50, Math.min(1_000, Math.floor(leaseMs / 3))),
  );
  return {
    memberId,
    jobId,
    leaseMs,
    coordinator,
    evicted: evicted.signal,
    assignments: () => coordinator.assignments({ memberId }, { signal }),
    close() {
      clearInterval(heartbeat);
      closed.abort();
      coordinator.close();
    },
  };
}
