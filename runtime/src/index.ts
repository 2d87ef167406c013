/**
 * @trainfleet/runtime: what every process runs on: logger, HTTP server and server-sent events, metrics, async queue, atomic files, the membership session, TLS credentials (issued, checked, reloaded, renewed).
 * It may import proto; other packages import only what is re-exported here, by name.
 */
export { abortableDelay } from "./abortable-delay.js";
export { AsyncQueue } from "./async-queue.js";
export { fileSha256, sha256Hex, writeAtomically } from "./atomic-file.js";
export { codeFromName, sendError, sendJson, sendMethodNotAllowed, sendText } from "./http/http-responses.js";
export type { RunningHttpServer } from "./http/http-server.js";
export { startHttpServer } from "./http/http-server.js";
export type { ServerSentEvent } from "./http/server-sent-events.js";
export { formatServerSentEvent, keepAliveComment, readServerSentEvents, ServerSentEventParser } from "./http/server-sent-events.js";
export type { Logger } from "./logger.js";
export { LogContext, logContext, silentLogger } from "./logger.js";
export type { MemberSession } from "./member-session.js";
export { joinJob } from "./member-session.js";
export type { Sample } from "./metrics/metric-registry.js";
export { Counter, Histogram, MetricRegistry } from "./metrics/metric-registry.js";
export type { MetricsSource } from "./metrics/metrics-server.js";
export { sendMetrics, startMetricsServer } from "./metrics/metrics-server.js";
export { encodeUserinfo, redactingLogger, redactUrl, splitUserinfo, withUserinfo } from "./redact-url.js";
export type { RenewalOptions, RenewedMember } from "./tls/certificate-renewal.js";
export { CertificateRenewal } from "./tls/certificate-renewal.js";
export type { TlsFileFlags } from "./tls/credential-check.js";
export { readTransportSecurity } from "./tls/credential-check.js";
export type { PollResult, ReloadOptions } from "./tls/credential-reloader.js";
export { CredentialReloader, defaultReloadIntervalMs, reloadingTransportSecurity } from "./tls/credential-reloader.js";
export type { AuthorityOptions, IssuedCertificate, IssueOptions, JobAuthority } from "./tls/job-authority.js";
export {
  createJobAuthority,
  defaultAuthorityValiditySeconds,
  defaultCertificateValiditySeconds,
  issueCertificate,
} from "./tls/job-authority.js";
export type { Validity } from "./tls/renewal-time.js";
export { renewalDue, renewalTime, validityOf } from "./tls/renewal-time.js";
export type { MemberCredentials, TlsFiles } from "./tls/tls-files.js";
export { memberTlsFiles, writeMemberCertificate, writeMemberCredentials } from "./tls/tls-files.js";
