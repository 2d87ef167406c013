/**
 * The TLS settings of the TCP data channel, both ends: TLS 1.3 only, the job's CA the only
 * issuer either side trusts, and each side's own certificate. The server asks every client
 * for a certificate and drops one the CA did not issue during the handshake; which role the
 * certificate names is checked after it (data-plane-access.ts). The client checks that the
 * server's certificate names the shard it dialled, not its address (pods move).
 *
 * Both take the credentials in use at the moment: the client's options are made for each
 * connection, and the server (tcp-data-server.ts) installs each set its credentials switch to
 * (`setSecureContext`), so renewed certificates need no restart and open connections stay.
 */
import type { ConnectionOptions, TlsOptions } from "node:tls";
import type { ClientSecurity, TransportSecurity } from "@trainfleet/proto";
import { credentialsNow, peerIdentityOf, peerMismatch } from "@trainfleet/proto";

/** The server's options for one set of credentials (the set in use now, or one just switched to). */
export function serverTlsOptions(security: TransportSecurity): TlsOptions {
  return {
    ca: security.ca,
    cert: security.certificate,
    key: security.key,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.3",
  };
}

/** A new connection's options, with the credentials in use now. */
export function clientTlsOptions(tls: ClientSecurity, address: string): ConnectionOptions {
  const security = credentialsNow(tls.security);
  const expected = { jobId: security.identity.jobId, ...tls.server };
  return {
    ca: security.ca,
    cert: security.certificate,
    key: security.key,
    minVersion: "TLSv1.3",
    rejectUnauthorized: true,
    checkServerIdentity: (_host, certificate) => {
      const problem = peerMismatch(peerIdentityOf(certificate), expected);
      return problem === undefined ? undefined : new Error(`the shard at ${address} is not the shard this client dialled: ${problem}`);
    },
  };
}
