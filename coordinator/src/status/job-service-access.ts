/**
 * The bearer-token check of gRPC JobService (api-tokens.ts): GetJob and WatchJob need the
 * read token, SubmitJob the control token, sent as the call metadata
 * `authorization: Bearer TOKEN`. A call without a valid token ends with UNAUTHENTICATED, one
 * whose token lacks the right with PERMISSION_DENIED, before its handler runs; both name
 * the token to send.
 *
 * proto's addService hands the handlers only a signal and the peer, so the check sits
 * between it and grpc-js: the server it registers on is a view of the real one whose
 * addService puts each method behind the check, with the call's metadata at hand.
 */
import type { startServer } from "@trainfleet/proto";
import type { ApiRight, ApiTokenOptions } from "./api-tokens.js";
import { ApiTokens, refusal } from "./api-tokens.js";

type GrpcServer = Parameters<Parameters<typeof startServer>[1]>[0];
type Implementation = Parameters<GrpcServer["addService"]>[1];

/** What a call of each method needs, by the method's local name (submitJob). */
export type MethodRights = Record<string, { right: ApiRight; what: string }>;

/** The JobService methods and the right each needs. */
export const jobServiceRights: MethodRights = {
  submitJob: { right: "control", what: "submit a job (JobService.SubmitJob)" },
  getJob: { right: "read", what: "read the job's status (JobService.GetJob)" },
  watchJob: { right: "read", what: "watch the job's status (JobService.WatchJob)" },
};

/** The parts of a grpc-js call the check reads, and the ways it ends one. */
interface GuardedCall {
  metadata: { get(key: string): unknown[] };
  emit(event: "error", status: { code: number; details: string }): boolean;
}
type Handler = (call: GuardedCall, callback?: (status: { code: number; details: string } | null) => void) => void;

/** `server`, seen through an addService that checks each call of a method in `rights` against `tokens` first. */
export function withTokenCheck(server: GrpcServer, options: ApiTokenOptions, rights: MethodRights = jobServiceRights): GrpcServer {
  const tokens = new ApiTokens(options);
  if (!tokens.required) return server;
  const guarded = Object.create(server) as GrpcServer;
  guarded.addService = (definition, implementation) => {
    const checked: Implementation = {};
    for (const [name, handler] of Object.entries(implementation)) {
      const needs = rights[name];
      checked[name] = needs === undefined ? handler : guard(handler as unknown as Handler, tokens, needs);
    }
    server.addService(definition, checked);
  };
  return guarded;
}

function guard(handler: Handler, tokens: ApiTokens, needs: { right: ApiRight; what: string }): Implementation[string] {
  const checked: Handler = (call, callback) => {
    const given = call.metadata.get("authorization")[0];
    const access = tokens.access(typeof given === "string" ? given : undefined);
    const refused = refusal(tokens, access, needs.right, needs.what, 'the metadata "authorization: Bearer TOKEN"');
    if (refused === undefined) return handler(call, callback);
    const status = { code: refused.code, details: refused.message };
    // A unary call answers through its callback; a stream ends with an error status.
    if (callback !== undefined) callback(status);
    else call.emit("error", status);
  };
  return checked as unknown as Implementation[string];
}
