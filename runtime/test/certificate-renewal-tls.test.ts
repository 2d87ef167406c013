/**
 * When certificates are renewed (2/3 through their life), and `trainfleet run`'s renewer at work
 * on real files: each member's certificate and key are replaced (0600) by a new pair of the same
 * CA and identity when due, again and again, and a member reloading its files switches to them.
 */
import { X509Certificate } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import type { PeerIdentity } from "@trainfleet/proto";
import { peerIdentityOf } from "@trainfleet/proto";
import { makeJobCertificates } from "@trainfleet/testing/fixtures/job-certificates";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../src/logger.js";
import { CertificateRenewal } from "../src/tls/certificate-renewal.js";
import { readTransportSecurity } from "../src/tls/credential-check.js";
import type { IssuedCertificate } from "../src/tls/job-authority.js";
import { renewalDue, renewalTime, validityOf } from "../src/tls/renewal-time.js";

const open: Array<{ close(): unknown }> = [];
afterEach(async () => {
  for (const resource of open.splice(0).reverse()) await resource.close();
});

describe("renewalTime: 2/3 through a certificate's life", () => {
  const hour = 3_600_000;
  it.each([
    { notBefore: 0, notAfter: 24 * hour, at: 16 * hour },
    { notBefore: 1_000, notAfter: 4_000, at: 3_000 },
    { notBefore: 5 * hour, notAfter: 5 * hour + 365 * 24 * hour, at: 5 * hour + (2 * 365 * 24 * hour) / 3 },
  ])("$notBefore..$notAfter is due at $at", ({ notBefore, notAfter, at }) => {
    expect(renewalTime({ notBefore, notAfter })).toBe(at);
    expect(renewalDue({ notBefore, notAfter }, at - 1)).toBe(false);
    expect(renewalDue({ notBefore, notAfter }, at)).toBe(true);
  });
});

describe("trainfleet run's CertificateRenewal", () => {
  it("replaces each member's certificate and key when due, with a new pair of the same CA and identity, and again when that is due", async () => {
    const certificates = await makeJobCertificates("renewal", [
      ["parameter-server", "ps-0"],
      ["worker", "worker-0"],
    ]);
    open.push(certificates);
    const members = await Promise.all(
      (["ps-0", "worker-0"] as const).map(async (name) => ({
        identity: certificates.security(name).identity,
        options: { validitySeconds: 3 },
        files: certificates.files(name),
        certificatePem: (await certificates.renew(name, { validitySeconds: 3 })).certificatePem,
      })),
    );
    const reloader = await certificates.reloader("worker-0");
    const renewed: Array<{ identity: PeerIdentity; issued: IssuedCertificate; at: number }> = [];
    let wake: () => void = () => {};
    const renewal = new CertificateRenewal(certificates.authority, members, {
      logger: silentLogger,
      onRenewed: (identity, issued) => {
        renewed.push({ identity, issued, at: Date.now() });
        wake();
      },
    });
    open.push(renewal);
    const firstDue = renewal.nextDueAt;
    expect(firstDue).toBe(Math.min(...members.map((member) => renewalTime(validityOf(member.certificatePem)))));
    // Two rounds: each member renewed twice.
    while (renewed.length < 4) await new Promise<void>((resolve) => (wake = resolve));
    renewal.close();

    expect(renewed.map((entry) => entry.identity.name).sort()).toEqual(["ps-0", "ps-0", "worker-0", "worker-0"]);
    for (const entry of renewed) expect(entry.at).toBeGreaterThanOrEqual(firstDue);
    for (const member of members) {
      const last = renewed.filter((entry) => entry.identity.name === member.identity.name).at(-1)!.issued;
      expect(await readFile(member.files.certificate, "utf8")).toBe(last.certificatePem);
      expect(await readFile(member.files.key, "utf8")).toBe(last.keyPem);
      for (const path of [member.files.certificate, member.files.key]) expect((await stat(path)).mode & 0o777).toBe(0o600);
      // Checked as a process checks its files: the CA's, in date, the key matching, the same identity.
      const security = await readTransportSecurity(member.files, { ca: "ca", certificate: "cert", key: "key" });
      expect(security.identity).toEqual(member.identity);
      expect(peerIdentityOf({ subjectaltname: new X509Certificate(last.certificatePem).subjectAltName ?? "" })).toEqual(member.identity);
    }
    expect(await reloader.poll()).toBe("switched");
    expect(reloader.current().certificate.toString()).toBe(await readFile(certificates.files("worker-0").certificate, "utf8"));
  });
});
