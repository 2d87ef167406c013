/**
 * What one process needs for mutual TLS: the job's CA (the only issuer it trusts; a bundle of
 * two while the CA is replaced), and its own certificate and key, issued by that CA for its
 * identity. Every gRPC server and client and the TCP data channel take one; `undefined` means
 * plaintext, which only an explicit --insecure asks for.
 *
 * Certificates are short-lived and renewed while a job runs, so a TransportSecurity may carry
 * `updates`: the set in use now and news of each switch to a newer one (runtime's
 * credential-reloader.ts makes it, from files it polls). The identity never changes across
 * updates (a set naming another is refused), so code that only asks who this process is reads
 * `identity` as it is; whatever makes a connection takes `credentialsNow(security)` at that
 * moment, and a server that outlives a switch installs each new set (grpc-credentials.ts, the
 * data channel's server). Connections already open keep the set they were made with.
 */
import type { PeerIdentity } from "./peer-identity.js";

export interface TransportSecurity {
  /** PEM of the job's CA certificate (or certificates). */
  ca: Buffer;
  /** PEM of this process's certificate and its private key. */
  certificate: Buffer;
  key: Buffer;
  /** Whom `certificate` names. */
  identity: PeerIdentity;
  /** Where newer sets come from, when the files behind this one are reloaded; absent: this set is fixed. */
  updates?: CredentialUpdates | undefined;
}

/** Newer sets of one identity's credentials, as the process switches to them. */
export interface CredentialUpdates {
  /** The set in use now. */
  current(): TransportSecurity;
  /** Calls `listener` with each set switched to from now on; returns what stops that. */
  subscribe(listener: (security: TransportSecurity) => void): () => void;
}

/** The set to make a connection with now: the newest of `security`'s updates, or `security` itself. */
export function credentialsNow(security: TransportSecurity): TransportSecurity {
  return security.updates?.current() ?? security;
}
