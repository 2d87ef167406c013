/**
 * The coordinator's gRPC services: CoordinatorService for members, JobService for users
 * (behind the bearer tokens when there are any: job-service-access.ts).
 */

import type { RunningServer } from "@trainfleet/proto";
import { addService, Code, CoordinatorService, invalidField, JobService, startServer, TrainfleetError } from "@trainfleet/proto";
import type { ResolvedJobSpec } from "@trainfleet/spec";
import { resolveJobSpec } from "@trainfleet/spec";
import type { Coordinator } from "../job/coordinator.js";
import type { ApiTokenOptions } from "../status/api-tokens.js";
import { withTokenCheck } from "../status/job-service-access.js";
import { watchStatus } from "../status/status-watch.js";

/** Reads a job's model and data files once and pins what they hold into its spec (see CoordinatorProcessOptions). */
export type PinArtifacts = (spec: ResolvedJobSpec) => Promise<ResolvedJobSpec>;

/** Without a reader for them, a job naming a user's model or dataset is refused: nothing here could read its files. */
async function refuseArtifacts(spec: ResolvedJobSpec): Promise<ResolvedJobSpec> {
  if (spec.model?.kind.case === "layers" || spec.dataset?.manifest !== "") {
    throw new TrainfleetError(
      Code.FAILED_PRECONDITION,
      "this coordinator cannot read a user's model or dataset (it was started without a reader for them): run it as `trainfleet coordinator`",
    );
  }
  return spec;
}

/**
 * `pinArtifacts` pins a submitted job; without it, a job that brings its own files cannot be
 * submitted here. `tokens`: the read and control tokens JobService calls must carry (none: open).
 */
export async function startCoordinatorServer(
  coordinator: Coordinator,
  listen: string,
  pinArtifacts: PinArtifacts = refuseArtifacts,
  tokens: ApiTokenOptions = {},
): Promise<RunningServer> {
  return startServer(listen, (server, serverSignal) => {
    addService(
      server,
      CoordinatorService,
      {
        async register(request) {
          return coordinator.register(request);
        },
        async heartbeat(request) {
          return { leaseExpiresUnixMs: BigInt(coordinator.heartbeat(request.memberId, request.shardStats)) };
        },
        async *assignments(request, { signal }) {
          const stream = coordinator.assignments(request.memberId, signal);
          try {
            yield* stream;
          } finally {
            coordinator.streamClosed(request.memberId);
          }
        },
        async reportProgress(request) {
          coordinator.reportProgress(request);
          return {};
        },
        async reportEvaluation(request) {
          coordinator.reportEvaluation(request);
          return {};
        },
        async reportCheckpoint(request) {
          coordinator.reportCheckpoint(request);
          return {};
        },
        async reportGeneration(request) {
          coordinator.reportGeneration(request);
          return {};
        },
        async reportFailure(request) {
          coordinator.reportFailure(request);
          return {};
        },
      },
      serverSignal,
    );
    addService(
      withTokenCheck(server, tokens),
      JobService,
      {
        async submitJob(request) {
          if (request.spec === undefined) throw invalidField("spec", "required: send the JobSpec to run");
          const spec = await pinArtifacts(resolveJobSpec(request.spec));
          coordinator.submit(spec);
          return { spec, status: coordinator.status() };
        },
        async getJob() {
          return { status: coordinator.status() };
        },
        async *watchJob(_request, { signal }) {
          // The same updates as the HTTP event stream (status-watch.ts).
          for await (const { status } of watchStatus(coordinator, { signal })) yield { status };
        },
      },
      serverSignal,
    );
  });
}
