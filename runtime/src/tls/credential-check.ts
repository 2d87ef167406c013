/**
 * A member's TLS credentials read from their files and checked, at start and on every reload
 * (credential-reloader.ts): the CA file (one CA certificate, or a bundle of several while a CA
 * is replaced), the member's certificate, issued by one of them, in date and naming one
 * trainfleet identity, and the private key that matches it. A wrong file fails naming its flag
 * and path, instead of every handshake failing later with an OpenSSL message.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { TransportSecurity } from "@trainfleet/proto";
import { Code, peerIdentityOf, TrainfleetError } from "@trainfleet/proto";
import type { TlsFiles } from "./tls-files.js";

/** The flag (or other name) that each file was given by, for errors. */
export interface TlsFileFlags {
  ca: string;
  certificate: string;
  key: string;
}

/** The bytes of a member's three files, unchecked. */
export interface CredentialBytes {
  ca: Buffer;
  certificate: Buffer;
  key: Buffer;
}

/** The three files' bytes; a file that cannot be read fails naming its flag. */
export async function readCredentialFiles(files: TlsFiles, flags: TlsFileFlags): Promise<CredentialBytes> {
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
  return { ca, certificate, key };
}

/** Whether two reads of the files gave the same bytes. */
export function sameCredentialBytes(a: CredentialBytes, b: CredentialBytes): boolean {
  return a.ca.equals(b.ca) && a.certificate.equals(b.certificate) && a.key.equals(b.key);
}

/** The transport security of these bytes, checked: issued by the CA (or one of the bundle's), in date at `now`, matching its key, naming one identity. */
export function checkCredentials(bytes: CredentialBytes, files: TlsFiles, flags: TlsFileFlags, now = Date.now()): TransportSecurity {
  const { ca, certificate, key } = bytes;
  const invalid = (flag: string, path: string, problem: string) =>
    new TrainfleetError(Code.INVALID_ARGUMENT, `${flag} ${path}: ${problem}`);
  const parse = (pem: string | Buffer, flag: string, path: string) => {
    try {
      return new X509Certificate(pem);
    } catch (error) {
      throw invalid(flag, path, `not a PEM certificate (${(error as Error).message})`);
    }
  };
  const authorityPems = ca.toString("utf8").match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [ca];
  const authorities = authorityPems.map((pem) => parse(pem, flags.ca, files.ca));
  if (authorities.some((authority) => !authority.ca)) throw invalid(flags.ca, files.ca, "is not a CA certificate");
  const own = parse(certificate, flags.certificate, files.certificate);
  if (!authorities.some((authority) => own.checkIssued(authority) && own.verify(authority.publicKey))) {
    throw invalid(
      flags.certificate,
      files.certificate,
      `was not issued by the CA in ${files.ca}: give the certificate and the CA of the same job`,
    );
  }
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

/** The transport security of a member from its files, checked (checkCredentials): read once, fixed. */
export async function readTransportSecurity(files: TlsFiles, flags: TlsFileFlags): Promise<TransportSecurity> {
  return checkCredentials(await readCredentialFiles(files, flags), files, flags);
}
