/**
 * The coordinator's gRPC services: CoordinatorService for members, JobService for users
 * (behind the bearer tokens when there are any: job-service-access.ts).
 */

import type { RunningServer, TransportSecurity } from "@trainfleet/proto";
import { addService, Code, CoordinatorService, invalidField, JobService, startServer, TrainfleetError } from "@trainfleet/proto";
import type { ResolvedJobSpec } from "@trainfleet/spec";
import { resolveJobSpec } from "@trainfleet/spec";
import type { Coordinator } from "../job/coordinator.js";
import type { ApiTokenOptions } from "../status/api-tokens.js";
import { withTokenCheck } from "../status/job-service-access.js";
import { watchStatus } from "../status/status-watch.js";
import { MemberAccess } from "./member-access.js";

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

export interface CoordinatorServerOptions {
  /** Pins a submitted job's files; without it, a job that brings its own files cannot be submitted here. */
  pinArtifacts?: PinArtifacts | undefined;
  /** The read and control tokens JobService calls must carry (none: open). */
  tokens?: ApiTokenOptions | undefined;
  /** Mutual TLS with the job's CA, and the member calls' role checks (member-access.ts); absent: plaintext. */
  security?: TransportSecurity | undefined;
}

export async function startCoordinatorServer(
  coordinator: Coordinator,
  listen: string,
  options: CoordinatorServerOptions = {},
): Promise<RunningServer> {
  const { pinArtifacts = refuseArtifacts, tokens = {}, security } = options;
  const access = new MemberAccess(security);
  return startServer(
    listen,
    (server, serverSignal) => {
      addService(
        server,
        CoordinatorService,
        {
          async register(request, { identity }) {
            access.checkRegister(identity, request.role, request.shardIndex);
            const response = coordinator.register(request, identity?.name);
            access.registered(response.memberId, identity);
            return response;
          },
          async heartbeat(request, { identity }) {
            access.checkMember(identity, request.memberId, "Heartbeat");
            return { leaseExpiresUnixMs: BigInt(coordinator.heartbeat(request.memberId, request.shardStats)) };
          },
          async *assignments(request, { signal, identity }) {
            access.checkMember(identity, request.memberId, "Assignments");
            const stream = coordinator.assignments(request.memberId, signal);
            try {
              yield* stream;
            } finally {
              coordinator.streamClosed(request.memberId);
            }
          },
          async reportProgress(requests, { identity }) {
            for await (const request of requests) {
              access.checkMember(identity, request.memberId, "ReportProgress");
              try {
                coordinator.reportProgress(request);
              } catch (error) {
                // A step of a generation that is over: it is handed out again, and the stream goes on.
                if (TrainfleetError.from(error).code !== Code.FAILED_PRECONDITION) throw error;
              }
            }
            return {};
          },
          async reportEvaluation(request, { identity }) {
            access.checkMember(identity, request.memberId, "ReportEvaluation");
            coordinator.reportEvaluation(request);
            return {};
          },
          async reportCheckpoint(request, { identity }) {
            access.checkMember(identity, request.memberId, "ReportCheckpoint");
            coordinator.reportCheckpoint(request);
            return {};
          },
          async reportGeneration(request, { identity }) {
            access.checkMember(identity, request.memberId, "ReportGeneration");
            coordinator.reportGeneration(request);
            return {};
          },
          async reportFailure(request, { identity }) {
            access.checkFailureReport(identity, request.workerId, request.host);
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
    },
    security,
  );
}
