/**
 * A job's own certificate authority and the certificates it issues, one per member: ECDSA
 * P-256 keys from WebCrypto, certificates built by @peculiar/x509 (a maintained X.509
 * library; Node's crypto reads certificates but cannot make them). Each certificate names
 * its holder's identity as a URI subject alternative name (proto's peer-identity.ts), which
 * every connection of the job checks; its DNS and IP names are for tools that look at them,
 * trainfleet's own peers check the identity.
 *
 * Lifetimes: the CA outlives what it issues (a year by default), members' certificates are
 * short-lived (24 hours by default) and renewed while the job runs, at 2/3 of their life
 * (certificate-renewal.ts: `trainfleet run` rewrites the files, the operator the Secret;
 * members reload them, credential-reloader.ts). A certificate never outlives its CA.
 * `now` stands in for the clock, so that tests can issue certificates already old.
 */
import { webcrypto } from "node:crypto";
import type { PeerIdentity } from "@trainfleet/proto";
import { identityUri } from "@trainfleet/proto";

type X509 = typeof import("@peculiar/x509");
let library: Promise<X509> | undefined;

/**
 * @peculiar/x509, loaded when the first certificate is made: only `trainfleet run` and the
 * operator make them, and loading it (with its ASN.1 schemas and polyfill) took every other
 * process about 0.3 s of its start.
 */
function x509Library(): Promise<X509> {
  library ??= (async () => {
    await import("reflect-metadata");
    const x509 = await import("@peculiar/x509");
    x509.cryptoProvider.set(webcrypto as never);
    return x509;
  })();
  return library;
}

type CryptoKey = webcrypto.CryptoKey;

const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const hourSeconds = 3_600;

/** How long a CA is valid unless told: a year. */
export const defaultAuthorityValiditySeconds = 365 * 24 * hourSeconds;
/** How long a member's certificate is valid unless told: 24 hours. */
export const defaultCertificateValiditySeconds = 24 * hourSeconds;

/** PEM text of a certificate and of its PKCS#8 private key. */
export interface IssuedCertificate {
  certificatePem: string;
  keyPem: string;
}

export interface JobAuthority extends IssuedCertificate {
  jobId: string;
}

export interface AuthorityOptions {
  /** Seconds from `now` (default a year). */
  validitySeconds?: number | undefined;
  /** When it is issued (default: the clock). */
  now?: Date | undefined;
}

export interface IssueOptions extends AuthorityOptions {
  /** Seconds from `now` (default 24 hours), cut to the CA's own end. */
  validitySeconds?: number | undefined;
  dnsNames?: readonly string[] | undefined;
  ipAddresses?: readonly string[] | undefined;
}

/** A new CA for `jobId`, valid `validitySeconds` (default a year): longer than the certificates it issues, which are renewed. */
export async function createJobAuthority(jobId: string, options: AuthorityOptions = {}): Promise<JobAuthority> {
  const x509 = await x509Library();
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
  const { notBefore, notAfter } = validity(options.validitySeconds ?? defaultAuthorityValiditySeconds, options.now);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=trainfleet job ${jobId} CA`,
    notBefore,
    notAfter,
    keys: keys as never,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as CryptoKey),
    ],
  });
  return { jobId, certificatePem: certificate.toString("pem"), keyPem: await keyPem(keys.privateKey as CryptoKey) };
}

/** A certificate for `identity`, signed by the job's CA, usable as TLS server and client alike. */
export async function issueCertificate(
  authority: JobAuthority,
  identity: PeerIdentity,
  options: IssueOptions = {},
): Promise<IssuedCertificate> {
  if (identity.jobId !== authority.jobId) throw new Error(`the CA of job ${authority.jobId} cannot issue for job ${identity.jobId}`);
  const x509 = await x509Library();
  const issuer = new x509.X509Certificate(authority.certificatePem);
  const issuerKey = await webcrypto.subtle.importKey("pkcs8", pemBody(authority.keyPem), algorithm, false, ["sign"]);
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
  const { notBefore, notAfter } = validity(options.validitySeconds ?? defaultCertificateValiditySeconds, options.now, issuer.notAfter);
  const names = [
    { type: "url" as const, value: identityUri(identity) },
    ...(options.dnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
    ...(options.ipAddresses ?? []).map((value) => ({ type: "ip" as const, value })),
  ];
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=${identity.role} ${identity.name}`,
    issuer: issuer.subject,
    notBefore,
    notAfter,
    publicKey: keys.publicKey as CryptoKey,
    signingKey: issuerKey,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(issuer),
    ],
  });
  return { certificatePem: certificate.toString("pem"), keyPem: await keyPem(keys.privateKey as CryptoKey) };
}

function validity(seconds: number, now = new Date(), latest?: Date): { notBefore: Date; notAfter: Date } {
  // Valid from a little before (a minute, a tenth of a short life), so that a peer whose clock is a little behind accepts it at once.
  const notAfter = new Date(now.getTime() + seconds * 1000);
  return {
    notBefore: new Date(now.getTime() - Math.min(60_000, Math.max(0, seconds * 100))),
    notAfter: latest !== undefined && latest < notAfter ? latest : notAfter,
  };
}

/** 16 random bytes, the top bit clear (a positive DER integer). */
function serialNumber(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f;
  return Buffer.from(bytes).toString("hex");
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString("base64").replace(/.{64}/g, "$&\n").replace(/\n?$/, "\n")}-----END PRIVATE KEY-----\n`;
}

function pemBody(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
}
