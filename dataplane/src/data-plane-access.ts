/**
 * Who may use a shard's data plane over mutual TLS, the same on the TCP channel and the
 * gRPC service: a worker pushes its gradients and pulls parameters; the coordinator only
 * pulls (the final parameters it saves, save-parameters.ts). Nobody else gets a connection
 * (another shard, the operator, a client), and only a worker may push as a rank. And whom
 * a client expects at the other end: the shard it dialled, ps-{index} of its job.
 */
import type { ExpectedPeer, PeerIdentity, PeerRole } from "@trainfleet/proto";
import { Code, peerMismatch, TrainfleetError } from "@trainfleet/proto";

/** The roles that may connect to a shard's data plane (and pull). */
export const dataPlaneRoles: readonly PeerRole[] = ["worker", "coordinator"];
/** The roles that may push a gradient. */
export const pushRoles: readonly PeerRole[] = ["worker"];

/** The identity a shard's certificate names: parameter-server ps-{index}. */
export function shardPeer(index: number): ExpectedPeer & { roles: readonly PeerRole[]; name: string } {
  return { roles: ["parameter-server"], name: `ps-${index}` };
}

/**
 * Why `identity` may not `action` on a shard of `jobId` (PERMISSION_DENIED naming the role
 * needed), or undefined when it may.
 */
export function dataPlaneRefusal(
  identity: PeerIdentity | undefined,
  jobId: string,
  action: "connect" | "push" | "pull",
): TrainfleetError | undefined {
  const roles = action === "push" ? pushRoles : dataPlaneRoles;
  const problem = peerMismatch(identity, { jobId, roles });
  if (problem === undefined) return undefined;
  const what = action === "push" ? "takes pushes only from a worker" : `serves only a ${roles.join(" or ")}`;
  return new TrainfleetError(Code.PERMISSION_DENIED, `this shard ${what} of job ${jobId}: ${problem}`);
}
