/**
 * A member's TLS credentials on disk: the job's CA certificate and the member's own
 * certificate and key, as `trainfleet run` writes them into the job folder (mode 0600) and
 * the operator mounts them from a Secret. Read once at start and checked then, so that a
 * wrong file fails the process naming the file, instead of every handshake failing later
 * with an OpenSSL message.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { PeerIdentity, TransportSecurity } from "@trainfleet/proto";
import { Code, peerIdentityOf, TrainfleetError } from "@trainfleet/proto";
import type { IssueOptions, JobAuthority } from "./job-authority.js";
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

/**
 * Writes the CA certificate and, for each member, a certificate and key issued for it, into
 * `dir` (created 0700, files 0600). The CA's own key is not written: nobody may issue more.
 */
export async function writeMemberCredentials(
  dir: string,
  authority: JobAuthority,
  members: ReadonlyArray<{ identity: PeerIdentity; options?: IssueOptions }>,
): Promise<Map<string, TlsFiles>> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const write = async (path: string, text: string) => {
    await writeFile(path, text, { mode: 0o600 });
    await chmod(path, 0o600);
  };
  await write(join(dir, "ca.pem"), authority.certificatePem);
  const written = new Map<string, TlsFiles>();
  for (const { identity, options } of members) {
    const files = memberTlsFiles(dir, identity.name);
    const issued = await issueCertificate(authority, identity, options);
    await write(files.certificate, issued.certificatePem);
    await write(files.key, issued.keyPem);
    written.set(identity.name, files);
  }
  return written;
}

/** The transport security of a member from its files, checked: one identity, issued by the CA, in date, matching its key. */
export async function readTransportSecurity(
  files: TlsFiles,
  flags: { ca: string; certificate: string; key: string },
): Promise<TransportSecurity> {
  const read = async (path: string, flag: string) => {
    try {
      return await readFile(path);
    } catch (error) {
      throw new TrainfleetError(Code.INVALID_ARGUMENT, `${flag} ${path}: cannot be read (${(error as Error).message})`, { cause: error });
    }
  };
  const [ca, certificate, key] = await Promise.all([
    read(files.ca, flags.ca),
    read(files.certificate, flags.certificate),
    read(files.key, flags.key),
  ]);
  const invalid = (flag: string, path: string, problem: string) =>
    new TrainfleetError(Code.INVALID_ARGUMENT, `${flag} ${path}: ${problem}`);
  const parse = (bytes: Buffer, flag: string, path: string) => {
    try {
      return new X509Certificate(bytes);
    } catch (error) {
      throw invalid(flag, path, `not a PEM certificate (${(error as Error).message})`);
    }
  };
  const authority = parse(ca, flags.ca, files.ca);
  const own = parse(certificate, flags.certificate, files.certificate);
  if (!authority.ca) throw invalid(flags.ca, files.ca, "is not a CA certificate");
  if (!own.checkIssued(authority) || !own.verify(authority.publicKey)) {
    throw invalid(
      flags.certificate,
      files.certificate,
      `was not issued by the CA in ${files.ca}: give the certificate and the CA of the same job`,
    );
  }
  const now = Date.now();
  if (Date.parse(own.validTo) <= now || Date.parse(own.validFrom) > now) {
    throw invalid(flags.certificate, files.certificate, `is valid from ${own.validFrom} to ${own.validTo}, not now: issue a new one`);
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw invalid(flags.key, files.key, `not a PEM private key (${(error as Error).message})`);
  }
  if (!own.checkPrivateKey(privateKey)) throw invalid(flags.key, files.key, `is not the key of the certificate in ${files.certificate}`);
  const identity = peerIdentityOf({ subjectaltname: own.subjectAltName ?? "" });
  if (identity === undefined) {
    throw invalid(
      flags.certificate,
      files.certificate,
      "names no trainfleet identity (a spiffe://trainfleet/job/... URI); issue it with trainfleet's job CA",
    );
  }
  return { ca, certificate, key, identity };
}
