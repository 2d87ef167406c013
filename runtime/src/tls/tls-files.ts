/**
 * A member's TLS credentials on disk: the job's CA certificate and the member's own
 * certificate and key, as `trainfleet run` writes them into the job folder (folder 0700, files
 * 0600) and the operator mounts them from a Secret. Every file is written whole under a
 * temporary name and renamed over the old one, and a renewed certificate and its key are
 * renamed one right after the other: a member reloading them (credential-reloader.ts) reads
 * the old set or the new one, and a read that catches the instant between the two renames is
 * seen to change under it and read again on its next poll. credential-check.ts reads them.
 */
import { chmod, mkdir, open, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { PeerIdentity } from "@trainfleet/proto";
import type { IssuedCertificate, IssueOptions, JobAuthority } from "./job-authority.js";
import { issueCertificate } from "./job-authority.js";

export interface TlsFiles {
  /** PEM of the job's CA certificate. */
  ca: string;
  /** PEM of this member's certificate and private key. */
  certificate: string;
  key: string;
}

/** Where writeMemberCredentials puts a member's files in `dir`. */
export function memberTlsFiles(dir: string, name: string): TlsFiles {
  return { ca: join(dir, "ca.pem"), certificate: join(dir, `${name}.pem`), key: join(dir, `${name}-key.pem`) };
}

/** A member of writeMemberCredentials: whom to issue for, and how. */
export interface MemberCredentials {
  identity: PeerIdentity;
  options?: IssueOptions;
}

/**
 * Writes the CA certificate and, for each member, a certificate and key issued for it, into
 * `dir` (created 0700, files 0600). The CA's own key is not written: nobody may issue more.
 * Returns each member's files and the certificate written there.
 */
export async function writeMemberCredentials(
  dir: string,
  authority: JobAuthority,
  members: readonly MemberCredentials[],
): Promise<Map<string, TlsFiles & { issued: IssuedCertificate }>> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  await replaceFiles([[join(dir, "ca.pem"), authority.certificatePem]]);
  const written = new Map<string, TlsFiles & { issued: IssuedCertificate }>();
  for (const { identity, options } of members) {
    const files = memberTlsFiles(dir, identity.name);
    const issued = await issueCertificate(authority, identity, options);
    await writeMemberCertificate(files, issued);
    written.set(identity.name, { ...files, issued });
  }
  return written;
}

/** Replaces a member's certificate and key with `issued` (0600), the two renamed one right after the other. */
export async function writeMemberCertificate(files: Pick<TlsFiles, "certificate" | "key">, issued: IssuedCertificate): Promise<void> {
  await replaceFiles([
    [files.key, issued.keyPem],
    [files.certificate, issued.certificatePem],
  ]);
}

let temporaries = 0;

/** Writes each text to a temporary file beside its path (0600), then renames them all over their paths. */
async function replaceFiles(entries: ReadonlyArray<readonly [path: string, text: string]>): Promise<void> {
  const staged: Array<[temporary: string, path: string]> = [];
  try {
    for (const [path, text] of entries) {
      const temporary = `${path}.tmp-${process.pid}-${temporaries++}`;
      staged.push([temporary, path]);
      const file = await open(temporary, "w", 0o600);
      try {
        await file.writeFile(text);
        await file.sync();
      } finally {
        await file.close();
      }
      // The mode applies at creation only, and the umask may have taken bits away: set it.
      await chmod(temporary, 0o600);
    }
    for (const [temporary, path] of staged) await rename(temporary, path);
  } catch (error) {
    await Promise.all(staged.map(([temporary]) => rm(temporary, { force: true })));
    throw error;
  }
}
