/**
 * Keeps the members' certificates of a job whose CA is in this process's memory (`trainfleet
 * run`) renewed: each is re-issued for the same identity when 2/3 of its life has passed
 * (renewal-time.ts) and its certificate and key files are replaced (tls-files.ts); the members
 * reload them (credential-reloader.ts). A renewal that fails is logged and tried again a
 * minute later (sooner for short lives), well within the third of the life that is left.
 */
import type { PeerIdentity } from "@trainfleet/proto";
import { identityUri } from "@trainfleet/proto";
import type { Logger } from "../logger.js";
import type { IssuedCertificate, IssueOptions, JobAuthority } from "./job-authority.js";
import { issueCertificate } from "./job-authority.js";
import { renewalTime, validityOf } from "./renewal-time.js";
import type { TlsFiles } from "./tls-files.js";
import { writeMemberCertificate } from "./tls-files.js";

/** A member whose certificate is kept renewed: its identity, how it is issued, where it goes and what it holds now. */
export interface RenewedMember {
  identity: PeerIdentity;
  options?: IssueOptions | undefined;
  files: Pick<TlsFiles, "certificate" | "key">;
  /** The certificate in the files now. */
  certificatePem: string;
}

export interface RenewalOptions {
  logger: Logger;
  /** Stops renewing when aborted. */
  signal?: AbortSignal | undefined;
  /** Told of each certificate written (tests wait on it). */
  onRenewed?: ((identity: PeerIdentity, issued: IssuedCertificate) => void) | undefined;
}

/** The longest a timer waits before it looks again (setTimeout cannot wait past 2^31 ms). */
const longestWaitMs = 24 * 3_600_000;

export class CertificateRenewal {
  readonly #authority: JobAuthority;
  readonly #options: RenewalOptions;
  /** Each member, the certificate in its files and when that is due. */
  readonly #members: Array<{ member: RenewedMember; certificatePem: string; dueAt: number }>;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #stop = () => this.close();

  constructor(authority: JobAuthority, members: readonly RenewedMember[], options: RenewalOptions) {
    this.#authority = authority;
    this.#options = options;
    this.#members = members.map((member) => ({
      member,
      certificatePem: member.certificatePem,
      dueAt: renewalTime(validityOf(member.certificatePem)),
    }));
    if (options.signal?.aborted === true) this.#closed = true;
    else {
      options.signal?.addEventListener("abort", this.#stop, { once: true });
      this.#schedule();
    }
  }

  /** When the next certificate is due (ms since the epoch; Infinity when none will be). */
  get nextDueAt(): number {
    return Math.min(...this.#members.map((entry) => entry.dueAt));
  }

  #schedule(): void {
    const next = this.nextDueAt;
    if (this.#closed || !Number.isFinite(next)) return;
    const waitMs = Math.min(longestWaitMs, Math.max(0, next - Date.now()));
    this.#timer = setTimeout(() => void this.#renewDue().finally(() => this.#schedule()), waitMs);
    // Renewing alone keeps no process alive: it serves processes that the owner keeps running.
    this.#timer.unref();
  }

  async #renewDue(): Promise<void> {
    for (const entry of this.#members) {
      if (this.#closed) return;
      if (entry.dueAt > Date.now()) continue;
      const { identity, options, files } = entry.member;
      try {
        const issued = await issueCertificate(this.#authority, identity, options);
        await writeMemberCertificate(files, issued);
        const validity = validityOf(issued.certificatePem);
        entry.certificatePem = issued.certificatePem;
        entry.dueAt = renewalTime(validity);
        // At debug: the members' reloads say it at info, each in its own log.
        this.#options.logger.debug(
          { identity: identityUri(identity), validUntil: new Date(validity.notAfter).toISOString() },
          `renewed the certificate in ${files.certificate}`,
        );
        this.#options.onRenewed?.(identity, issued);
        // Cut short by the CA's own end: renewing again would gain nothing.
        if (entry.dueAt <= Date.now()) {
          entry.dueAt = Number.POSITIVE_INFINITY;
          this.#options.logger.error(
            { identity: identityUri(identity) },
            `the job's CA expires at ${new Date(validity.notAfter).toISOString()}: no certificate can be renewed past it; stop the job before then and resume it (a resumed run gets a new CA)`,
          );
        }
      } catch (error) {
        const { notAfter } = validityOf(entry.certificatePem);
        entry.dueAt = Date.now() + Math.min(60_000, Math.max(1_000, (notAfter - Date.now()) / 10));
        this.#options.logger.error(
          { identity: identityUri(identity), err: (error as Error).message },
          `renewing the certificate in ${files.certificate} failed; trying again at ${new Date(entry.dueAt).toISOString()}`,
        );
      }
    }
  }

  /** Stops renewing; the files stay as they are. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#options.signal?.removeEventListener("abort", this.#stop);
  }
}
