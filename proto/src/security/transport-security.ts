/**
 * What one process needs for mutual TLS: the job's CA (the only issuer it trusts), and its
 * own certificate and key, issued by that CA for its identity. Every gRPC server and client
 * and the TCP data channel take one; `undefined` means plaintext, which only an explicit
 * --insecure asks for.
 */
import type { PeerIdentity } from "./peer-identity.js";

export interface TransportSecurity {
  /** PEM of the job's CA certificate. */
  ca: Buffer;
  /** PEM of this process's certificate and its private key. */
  certificate: Buffer;
  key: Buffer;
  /** Whom `certificate` names. */
  identity: PeerIdentity;
}
