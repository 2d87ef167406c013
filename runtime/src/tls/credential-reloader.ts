/**
 * A member's credentials, reloaded from their files while the process runs, so that renewed
 * certificates (`trainfleet run` rewrites them, the operator re-issues the Secret that the
 * kubelet swaps in) are used without a restart. The files are polled (every 30 s by default)
 * and compared by content: a Secret volume swaps its files through a symlink, which file
 * watches miss. A changed set is checked as at start (credential-check.ts) and must name the
 * same identity; then it is switched to, and every subscriber (the gRPC servers, the data
 * channel's server) installs it. A set that fails is refused with an error naming the file,
 * once per bad set, and the old set stays in use. A set that fails while the files are being
 * written (a second read differs from the first) is left for the next poll, without an error.
 */
import type { CredentialUpdates, PeerIdentity, TransportSecurity } from "@trainfleet/proto";
import { Code, identityUri, TrainfleetError } from "@trainfleet/proto";
import type { Logger } from "../logger.js";
import type { CredentialBytes, TlsFileFlags } from "./credential-check.js";
import { checkCredentials, readCredentialFiles, sameCredentialBytes } from "./credential-check.js";
import { validityOf } from "./renewal-time.js";
import type { TlsFiles } from "./tls-files.js";

/** How often the files are read again unless told. */
export const defaultReloadIntervalMs = 30_000;

export interface ReloadOptions {
  logger: Logger;
  /** Milliseconds between polls (default 30 s). */
  intervalMs?: number | undefined;
  /** Stops polling when aborted. */
  signal?: AbortSignal | undefined;
}

/** What one poll found: the same files, a set switched to, or a set refused (the old one kept). */
export type PollResult = "unchanged" | "switched" | "refused";

export class CredentialReloader implements CredentialUpdates {
  readonly #files: TlsFiles;
  readonly #flags: TlsFileFlags;
  readonly #logger: Logger;
  readonly #intervalMs: number;
  readonly #listeners = new Set<(security: TransportSecurity) => void>();
  readonly #identity: PeerIdentity;
  #current: TransportSecurity;
  /** The bytes of the set in use. */
  #inUse: CredentialBytes;
  /** Why the last set was refused, so that a set is reported once, not every poll. */
  #refused: string | undefined;
  #expiryLogged = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #stop = () => this.close();
  readonly #signal: AbortSignal | undefined;

  private constructor(files: TlsFiles, flags: TlsFileFlags, options: ReloadOptions, bytes: CredentialBytes, first: TransportSecurity) {
    this.#files = files;
    this.#flags = flags;
    this.#logger = options.logger;
    this.#intervalMs = options.intervalMs ?? defaultReloadIntervalMs;
    this.#identity = first.identity;
    this.#current = first;
    this.#inUse = bytes;
    this.#signal = options.signal;
  }

  /** Reads and checks the files (failing as readTransportSecurity does), then polls them until closed. */
  static async start(files: TlsFiles, flags: TlsFileFlags, options: ReloadOptions): Promise<CredentialReloader> {
    const bytes = await readCredentialFiles(files, flags);
    const reloader = new CredentialReloader(files, flags, options, bytes, checkCredentials(bytes, files, flags));
    if (options.signal?.aborted === true) reloader.#closed = true;
    else {
      options.signal?.addEventListener("abort", reloader.#stop, { once: true });
      reloader.#schedule();
    }
    return reloader;
  }

  /** The transport security to hand to servers and clients: the first set, with this reloader as its updates. */
  get security(): TransportSecurity {
    return { ...this.#current, updates: this };
  }

  current(): TransportSecurity {
    return this.#current;
  }

  subscribe(listener: (security: TransportSecurity) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Reads the files once and switches to them if they changed and pass; the timer calls it, tests may too. */
  async poll(): Promise<PollResult> {
    const read = () => readCredentialFiles(this.#files, this.#flags).catch((error: Error) => error);
    const bytes = await read();
    if (!(bytes instanceof Error) && sameCredentialBytes(bytes, this.#inUse)) return this.#unchanged();
    const next = bytes instanceof Error ? bytes : this.#check(bytes);
    if (next instanceof Error) {
      // Caught between two renames of a writer: the files change under a second read. Next poll, then.
      const again = await read();
      const settled =
        bytes instanceof Error
          ? again instanceof Error && again.message === bytes.message
          : !(again instanceof Error) && sameCredentialBytes(again, bytes);
      if (!settled) return "unchanged";
      // Said once per bad set, not every poll; the set is checked again each time (it may come into date).
      if (next.message !== this.#refused) {
        this.#refused = next.message;
        this.#logger.error(
          { err: next.message, identity: identityUri(this.#identity) },
          `new TLS credentials refused, the ones in use are kept: ${next.message}`,
        );
      }
      return "refused";
    }
    this.#inUse = bytes as CredentialBytes;
    this.#refused = undefined;
    this.#expiryLogged = false;
    this.#current = next;
    this.#logger.info(
      { identity: identityUri(next.identity), validUntil: new Date(validityOf(next.certificate).notAfter).toISOString() },
      `TLS credentials reloaded from ${this.#files.certificate}: new connections present the new certificate`,
    );
    for (const listener of this.#listeners) {
      try {
        listener(next);
      } catch (error) {
        this.#logger.error({ err: (error as Error).message }, "installing reloaded TLS credentials failed");
      }
    }
    return "switched";
  }

  /** The set of `bytes` if it passes the checks and names this process's identity, else why not. */
  #check(bytes: CredentialBytes): TransportSecurity | Error {
    let next: TransportSecurity;
    try {
      next = checkCredentials(bytes, this.#files, this.#flags);
    } catch (error) {
      return error as Error;
    }
    const was = this.#identity;
    if (next.identity.jobId === was.jobId && next.identity.role === was.role && next.identity.name === was.name) return next;
    return new TrainfleetError(
      Code.INVALID_ARGUMENT,
      `${this.#flags.certificate} ${this.#files.certificate}: names ${identityUri(next.identity)}, but this process is ${identityUri(was)}: give it a certificate issued for its own identity`,
    );
  }

  /** Unchanged files: once their certificate has expired, that is said once (new connections will fail). */
  #unchanged(): PollResult {
    this.#refused = undefined;
    if (!this.#expiryLogged && validityOf(this.#current.certificate).notAfter <= Date.now()) {
      this.#expiryLogged = true;
      this.#logger.error(
        { identity: identityUri(this.#identity) },
        `${this.#flags.certificate} ${this.#files.certificate}: the certificate in use has expired and no renewed one has come; new connections fail until it does`,
      );
    }
    return "unchanged";
  }

  #schedule(): void {
    this.#timer = setTimeout(() => {
      void this.poll()
        .catch((error: unknown) => this.#logger.error({ err: (error as Error).message }, "reloading TLS credentials failed"))
        .finally(() => {
          if (!this.#closed) this.#schedule();
        });
    }, this.#intervalMs);
    // Polling alone keeps no process alive.
    this.#timer.unref();
  }

  /** Stops polling; the set in use stays. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#signal?.removeEventListener("abort", this.#stop);
  }
}

/** The member's transport security from its files, reloaded every `intervalMs` until `signal` aborts. */
export async function reloadingTransportSecurity(files: TlsFiles, flags: TlsFileFlags, options: ReloadOptions): Promise<TransportSecurity> {
  return (await CredentialReloader.start(files, flags, options)).security;
}
