/**
 * grpc-js credentials from a TransportSecurity, through grpc-js's CertificateProvider: the
 * server installs each set the process switches to (its next handshake presents the new
 * certificate and trusts the new CA bundle) and a channel takes the newest set for each
 * connection it makes. Open connections keep theirs. A fixed TransportSecurity (no `updates`)
 * goes the same way, with one set for ever. grpc-js's own FileWatcherCertificateProvider is
 * not used: it would take files that do not belong together; runtime's reloader checks them.
 */
import * as grpc from "@grpc/grpc-js";
import type { TransportSecurity } from "./transport-security.js";
import { credentialsNow } from "./transport-security.js";

type CertificateProvider = grpc.experimental.CertificateProvider;
type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

/** Server credentials that require a client certificate of the job's CA. */
export function serverCredentials(security: TransportSecurity): grpc.ServerCredentials {
  const provider = certificateProvider(security);
  return grpc.experimental.createCertificateProviderServerCredentials(provider, provider, true);
}

/** Channel credentials presenting this process's certificate; `checkServerIdentity` judges the server's. */
export function channelCredentials(
  security: TransportSecurity,
  checkServerIdentity: NonNullable<grpc.VerifyOptions["checkServerIdentity"]>,
): grpc.ChannelCredentials {
  const provider = certificateProvider(security);
  return grpc.experimental.createCertificateProviderChannelCredentials(provider, provider, { checkServerIdentity });
}

/**
 * A CertificateProvider over `security`: a listener gets the set in use (grpc-js waits for it
 * before its first handshake), then each new one, until it is removed. The first comes on a
 * microtask, not within the add: a grpc-js server adds its listeners before the watcher that
 * installs what they hear, so a set sent at once would be lost.
 */
function certificateProvider(security: TransportSecurity): CertificateProvider {
  const stops = new Map<CaListener | IdentityListener, () => void>();
  const listen = (listener: CaListener | IdentityListener, send: (set: TransportSecurity) => void) => {
    if (stops.has(listener)) return;
    stops.set(listener, security.updates?.subscribe(send) ?? (() => {}));
    queueMicrotask(() => {
      if (stops.has(listener)) send(credentialsNow(security));
    });
  };
  const unlisten = (listener: CaListener | IdentityListener) => {
    stops.get(listener)?.();
    stops.delete(listener);
  };
  return {
    addCaCertificateListener: (listener) => listen(listener, (set) => listener({ caCertificate: set.ca })),
    removeCaCertificateListener: unlisten,
    addIdentityCertificateListener: (listener) =>
      listen(listener, (set) => listener({ certificate: set.certificate, privateKey: set.key })),
    removeIdentityCertificateListener: unlisten,
  };
}
