/**
 * A job's CA and its members' certificates, used the way every connection uses them: a
 * real gRPC server and client over mutual TLS, where the server sees the caller's identity
 * and the client checks the server's. Refused: a client without a certificate, one issued
 * by another job's CA, a server whose certificate names another role; and credential files
 * that do not belong together fail when read, naming the file.
 */
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { PeerIdentity, RunningServer, TransportSecurity } from "@trainfleet/proto";
import { addService, Code, createClient, JobService, startServer, TrainfleetError } from "@trainfleet/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readTransportSecurity } from "../src/tls/credential-check.js";
import { createJobAuthority, issueCertificate } from "../src/tls/job-authority.js";
import { memberTlsFiles, writeMemberCredentials } from "../src/tls/tls-files.js";

const flags = { ca: "--tls-ca", certificate: "--tls-cert", key: "--tls-key" };
let dir: string;
const security = new Map<string, TransportSecurity>();
let stranger: TransportSecurity;
let server: RunningServer;
const callers: Array<PeerIdentity | undefined> = [];

const identity = (role: PeerIdentity["role"], name: string, jobId = "mnist"): PeerIdentity => ({ jobId, role, name });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "job-tls-"));
  const authority = await createJobAuthority("mnist");
  const members = [identity("coordinator", "coordinator"), identity("worker", "worker-0"), identity("parameter-server", "ps-0")];
  const files = await writeMemberCredentials(
    join(dir, "tls"),
    authority,
    members.map((id) => ({ identity: id, options: { ipAddresses: ["127.0.0.1"] } })),
  );
  for (const member of members) security.set(member.name, await readTransportSecurity(files.get(member.name)!, flags));
  const other = await createJobAuthority("mnist");
  const otherFiles = await writeMemberCredentials(join(dir, "other"), other, [{ identity: identity("worker", "worker-0") }]);
  stranger = await readTransportSecurity(otherFiles.get("worker-0")!, flags);
  server = await startServer(
    "127.0.0.1:0",
    (grpcServer, signal) =>
      addService(
        grpcServer,
        JobService,
        {
          async submitJob() {
            throw new TrainfleetError(Code.UNIMPLEMENTED, "not here");
          },
          async getJob(_request, context) {
            callers.push(context.identity);
            return {};
          },
          async *watchJob() {},
        },
        signal,
      ),
    security.get("coordinator"),
  );
});

afterAll(async () => {
  await server?.close(0);
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe("a job's certificates", () => {
  it("are written 0600 in a 0700 folder, with the CA's certificate and without its key", async () => {
    const { stdout } = await promisify(execFile)("ls", ["-la", join(dir, "tls")]);
    const modes = stdout
      .split("\n")
      .filter((line) => line.endsWith(".pem"))
      .map((line) => [line.split(/\s+/).at(-1), line.slice(0, 10)]);
    expect(modes.sort()).toEqual(
      ["ca.pem", "coordinator-key.pem", "coordinator.pem", "ps-0-key.pem", "ps-0.pem", "worker-0-key.pem", "worker-0.pem"].map((name) => [
        name,
        "-rw-------",
      ]),
    );
    expect(stdout.split("\n")[1]!.startsWith("drwx------")).toBe(true);
    expect(security.get("ps-0")!.identity).toEqual(identity("parameter-server", "ps-0"));
  });

  it("live for their defaults: the CA a year, a member's certificate 24 hours, and never past the CA", async () => {
    const authority = await createJobAuthority("mnist");
    const member = await issueCertificate(authority, identity("worker", "worker-7"));
    const life = (pem: string) => {
      const certificate = new X509Certificate(pem);
      return { from: Date.parse(certificate.validFrom), to: Date.parse(certificate.validTo) };
    };
    const hours = (ms: number) => Math.round(ms / 3_600_000);
    const ca = life(authority.certificatePem);
    expect(hours(ca.to - Date.now())).toBe(365 * 24);
    expect(hours(life(member.certificatePem).to - Date.now())).toBe(24);
    // Valid from a minute back, for peers whose clocks are a little behind.
    expect(Math.round((Date.now() - life(member.certificatePem).from) / 60_000)).toBe(1);
    const shortAuthority = await createJobAuthority("mnist", { validitySeconds: 3_600 });
    const cut = await issueCertificate(shortAuthority, identity("worker", "worker-7"), { validitySeconds: 7_200 });
    expect(life(cut.certificatePem).to).toBe(life(shortAuthority.certificatePem).to);
  });

  it("let a member call another over mutual TLS; the server sees who called", async () => {
    const client = createClient(JobService, server.address, { security: security.get("worker-0")!, server: { roles: ["coordinator"] } });
    await client.getJob({});
    client.close();
    expect(callers.at(-1)).toEqual(identity("worker", "worker-0"));
  });

  it("refuse a client without a certificate, and one of another job's CA", async () => {
    const plain = createClient(JobService, server.address);
    await expect(plain.getJob({}, { timeoutMs: 5_000 })).rejects.toMatchObject({ code: Code.UNAVAILABLE });
    plain.close();
    const other = createClient(JobService, server.address, { security: stranger, server: { roles: ["coordinator"] } });
    await expect(other.getJob({}, { timeoutMs: 5_000 })).rejects.toMatchObject({ code: Code.UNAVAILABLE });
    other.close();
  });

  it("let a client refuse a server whose certificate names another role or job", async () => {
    for (const expected of [{ roles: ["parameter-server" as const] }, { jobId: "another-job" }]) {
      const client = createClient(JobService, server.address, { security: security.get("worker-0")!, server: expected });
      const error = await client.getJob({}, { timeoutMs: 5_000 }).catch((e: unknown) => TrainfleetError.from(e));
      client.close();
      expect(error).toBeInstanceOf(TrainfleetError);
      expect((error as TrainfleetError).code).toBe(Code.UNAVAILABLE);
    }
  });

  it("fail when read if they do not belong together, naming the file", async () => {
    const mine = memberTlsFiles(join(dir, "tls"), "worker-0");
    const theirs = memberTlsFiles(join(dir, "other"), "worker-0");
    await expect(readTransportSecurity({ ...mine, ca: theirs.ca }, flags)).rejects.toThrow(
      `--tls-cert ${mine.certificate}: was not issued by the CA in ${theirs.ca}`,
    );
    await expect(readTransportSecurity({ ...mine, key: theirs.key }, flags)).rejects.toThrow(
      `--tls-key ${theirs.key}: is not the key of the certificate in ${mine.certificate}`,
    );
    await expect(readTransportSecurity({ ...mine, ca: join(dir, "missing.pem") }, flags)).rejects.toThrow(
      `--tls-ca ${join(dir, "missing.pem")}: cannot be read`,
    );
    const expiredAuthority = await createJobAuthority("mnist");
    const expired = await issueCertificate(expiredAuthority, identity("worker", "worker-9"), {
      now: new Date(Date.now() - 2 * 3_600_000),
      validitySeconds: 3_600,
    });
    await writeFile(join(dir, "expired.pem"), expired.certificatePem);
    await writeFile(join(dir, "expired-key.pem"), expired.keyPem);
    await writeFile(join(dir, "expired-ca.pem"), expiredAuthority.certificatePem);
    await expect(
      readTransportSecurity(
        { ca: join(dir, "expired-ca.pem"), certificate: join(dir, "expired.pem"), key: join(dir, "expired-key.pem") },
        flags,
      ),
    ).rejects.toThrow("not now: issue a new one");
  });
});
