/**
 * When a member's certificate is renewed: once 2/3 of its life has passed, so that the last
 * third (8 hours of the default 24) is left for the new one to be written and for every
 * member to reload it (each polls its files every 30 s by default), and for a renewal that
 * failed to be tried again. `trainfleet run` and the operator both renew by this rule.
 */
import { X509Certificate } from "node:crypto";

/** A certificate's validity, in milliseconds since the epoch. */
export interface Validity {
  notBefore: number;
  notAfter: number;
}

/** The validity of the PEM certificate `pem` (the first, if several). */
export function validityOf(pem: string | Buffer): Validity {
  const certificate = new X509Certificate(pem);
  return { notBefore: Date.parse(certificate.validFrom), notAfter: Date.parse(certificate.validTo) };
}

/** When a certificate of `validity` is due for renewal: 2/3 through its life. */
export function renewalTime(validity: Validity): number {
  return validity.notBefore + ((validity.notAfter - validity.notBefore) * 2) / 3;
}

/** Whether a certificate of `validity` is due for renewal at `now`. */
export function renewalDue(validity: Validity, now: number): boolean {
  return now >= renewalTime(validity);
}
