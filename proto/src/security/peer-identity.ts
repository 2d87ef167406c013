/**
 * Who is on the other end of a connection: the job and the role a certificate was issued
 * for, written in it as a URI subject alternative name, SPIFFE-style:
 *
 *   spiffe://trainfleet/job/{jobId}/{role}/{name}
 *
 * e.g. .../job/mnist/parameter-server/ps-0 or .../job/mnist/worker/worker-3. The job's own
 * CA signs every certificate of the job (runtime's job-authority.ts makes them), so TLS
 * proves the issuer and this URI says for what; a certificate of another job's CA fails
 * the handshake, one of this CA for another role fails the role check.
 */
import type { PeerCertificate } from "node:tls";

export const peerRoles = ["coordinator", "parameter-server", "worker", "operator", "client"] as const;
export type PeerRole = (typeof peerRoles)[number];

export interface PeerIdentity {
  jobId: string;
  role: PeerRole;
  /** The member's name within its role: ps-0, worker-3, coordinator. */
  name: string;
}

const prefix = "spiffe://trainfleet/job/";
/** Job ids and names as the URI carries them: no separators, nothing to escape. */
const segment = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function identityUri(identity: PeerIdentity): string {
  for (const [field, value] of [
    ["jobId", identity.jobId],
    ["name", identity.name],
  ] as const) {
    if (!segment.test(value))
      throw new Error(`${field} ${JSON.stringify(value)} cannot name a certificate: letters, digits, '.', '_' and '-' only`);
  }
  return `${prefix}${identity.jobId}/${identity.role}/${identity.name}`;
}

export function parseIdentityUri(uri: string): PeerIdentity | undefined {
  if (!uri.startsWith(prefix)) return undefined;
  const parts = uri.slice(prefix.length).split("/");
  if (parts.length !== 3) return undefined;
  const [jobId, role, name] = parts as [string, string, string];
  if (!segment.test(jobId) || !segment.test(name) || !(peerRoles as readonly string[]).includes(role)) return undefined;
  return { jobId, role: role as PeerRole, name };
}

/** The identity a peer's certificate names (its one trainfleet URI SAN), or undefined. */
export function peerIdentityOf(certificate: Pick<PeerCertificate, "subjectaltname"> | undefined | null): PeerIdentity | undefined {
  const names = certificate?.subjectaltname?.split(", ") ?? [];
  const identities = names.filter((name) => name.startsWith("URI:")).flatMap((name) => parseIdentityUri(name.slice(4)) ?? []);
  // Two identities in one certificate would let it pass as either: none is taken.
  return identities.length === 1 ? identities[0] : undefined;
}

/** What a connection's peer must be; absent fields accept any value. */
export interface ExpectedPeer {
  jobId?: string | undefined;
  roles?: readonly PeerRole[] | undefined;
  name?: string | undefined;
}

/** Why `identity` is not the peer expected, or undefined when it is. */
export function peerMismatch(identity: PeerIdentity | undefined, expected: ExpectedPeer): string | undefined {
  if (identity === undefined) return "its certificate names no trainfleet identity (a spiffe://trainfleet/job/... URI)";
  if (expected.jobId !== undefined && identity.jobId !== expected.jobId)
    return `its certificate is for job ${identity.jobId}, not ${expected.jobId}`;
  if (expected.roles !== undefined && !expected.roles.includes(identity.role))
    return `its certificate is a ${identity.role}'s (${identity.name}), and this needs a ${expected.roles.join(" or ")}`;
  if (expected.name !== undefined && identity.name !== expected.name)
    return `its certificate is ${identity.role} ${identity.name}'s, not ${expected.name}'s`;
  return undefined;
}
