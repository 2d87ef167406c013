/**
 * Certificates renewed while a job runs (issue 14, rotation), with real gRPC over mutual TLS:
 * a server and a client whose credentials are reloaded from their files (credential-reloader.ts)
 * switch to renewed files without a restart. After the first certificates (a few seconds' life)
 * have expired, a new connection succeeds and each side sees the other's new certificate,
 * while a connection made before the switch goes on with the old ones. A set naming another
 * identity, or a key that is not the certificate's, is refused with an error naming the file,
 * and the old set stays in use. The reloader polls by itself, too.
 */
import { X509Certificate } from "node:crypto";
import { copyFile, writeFile } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";
import { connect } from "node:tls";
import type * as grpc from "@grpc/grpc-js";
import type { RunningServer, TransportSecurity } from "@trainfleet/proto";
import { Code, createClient, grpcServiceDefinition, JobService, peerIdentityOf, startServer } from "@trainfleet/proto";
import type { JobCertificates } from "@trainfleet/testing/fixtures/job-certificates";
import { makeJobCertificates } from "@trainfleet/testing/fixtures/job-certificates";
import { rejection } from "@trainfleet/testing/rejection";
import { afterEach, describe, expect, it } from "vitest";
import type { Logger } from "../src/logger.js";
import { silentLogger } from "../src/logger.js";
import { validityOf } from "../src/tls/renewal-time.js";

const open: Array<{ close(): unknown }> = [];
afterEach(async () => {
  for (const resource of open.splice(0).reverse()) await resource.close();
});

async function job(validitySeconds: number): Promise<JobCertificates> {
  const made = await makeJobCertificates("rotation", [
    ["coordinator", "coordinator"],
    ["worker", "worker-0"],
    ["worker", "worker-1"],
  ]);
  open.push(made);
  // The coordinator's and worker-0's first certificates live `validitySeconds`.
  for (const name of ["coordinator", "worker-0"]) await made.renew(name, { validitySeconds });
  return made;
}

const serialOf = (pem: string | Buffer) => new X509Certificate(pem).serialNumber;

/** A JobService whose GetJob records the serial and identity of the caller's certificate, as the server's handshake saw it. */
async function recordingServer(
  security: TransportSecurity,
): Promise<{ server: RunningServer; callers: Array<{ serial: string; name: string }> }> {
  const callers: Array<{ serial: string; name: string }> = [];
  const server = await startServer(
    "127.0.0.1:0",
    (grpcServer) =>
      grpcServer.addService(grpcServiceDefinition(JobService), {
        getJob: (call: grpc.ServerUnaryCall<object, object>, callback: grpc.sendUnaryData<object>) => {
          const certificate = call.getAuthContext().sslPeerCertificate;
          callers.push({ serial: certificate?.serialNumber ?? "", name: peerIdentityOf(certificate)?.name ?? "" });
          callback(null, {});
        },
        submitJob: (_call: unknown, callback: grpc.sendUnaryData<object>) => callback(null, {}),
        watchJob: (call: grpc.ServerWritableStream<object, object>) => call.end(),
      }),
    security,
  );
  open.push({ close: () => server.close(0) });
  return { server, callers };
}

function client(address: string, security: TransportSecurity) {
  const made = createClient(JobService, address, { security, server: { roles: ["coordinator"] } });
  open.push(made);
  return made;
}

/** The serial of the certificate a server presents to a new TLS connection made with `security`. */
async function serverSerial(address: string, security: TransportSecurity): Promise<string> {
  const [host, port] = [address.slice(0, address.lastIndexOf(":")), Number(address.slice(address.lastIndexOf(":") + 1))];
  const socket = connect({
    host,
    port,
    ca: security.ca,
    cert: security.certificate,
    key: security.key,
    ALPNProtocols: ["h2"],
    checkServerIdentity: () => undefined,
  });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", resolve);
      socket.once("error", reject);
    });
    return socket.getPeerCertificate().serialNumber;
  } finally {
    socket.destroy();
  }
}

/** A logger that keeps its error lines. */
function errorLog(): { logger: Logger; errors: string[] } {
  const errors: string[] = [];
  const logger: Logger = { ...silentLogger, error: (_fields, message) => void errors.push(message), child: () => logger };
  return { logger, errors };
}

describe("credentials reloaded from their files, over real gRPC", () => {
  it("after the first certificates expired, a new connection presents the renewed ones both ways; one made before goes on", async () => {
    const certificates = await job(3);
    const serverReloader = await certificates.reloader("coordinator");
    const clientReloader = await certificates.reloader("worker-0");
    // The first set, never reloaded: what a process that cannot reload would hold.
    const fixed = clientReloader.current();
    const firstWorker = serialOf(fixed.certificate);
    const firstExpiry = validityOf(fixed.certificate).notAfter;
    const { server, callers } = await recordingServer(serverReloader.security);
    const before = client(server.address, clientReloader.security);
    await before.getJob({});
    expect(callers).toEqual([{ serial: firstWorker, name: "worker-0" }]);

    const renewedServer = await certificates.renew("coordinator", { validitySeconds: 3_600 });
    const renewedWorker = await certificates.renew("worker-0", { validitySeconds: 3_600 });
    expect(await serverReloader.poll()).toBe("switched");
    expect(await clientReloader.poll()).toBe("switched");
    expect(await clientReloader.poll()).toBe("unchanged");
    // Past the first certificates' end (X.509 times are whole seconds).
    await delay(firstExpiry + 1_000 - Date.now());

    await before.getJob({});
    const after = client(server.address, clientReloader.security);
    await after.getJob({});
    expect(callers.slice(1)).toEqual([
      { serial: firstWorker, name: "worker-0" },
      { serial: serialOf(renewedWorker.certificatePem), name: "worker-0" },
    ]);
    expect(await serverSerial(server.address, clientReloader.current())).toBe(serialOf(renewedServer.certificatePem));
    // Without the reload, the expired certificate is refused: the renewal is what kept the job reachable.
    expect((await rejection(client(server.address, fixed).getJob({}, { timeoutMs: 5_000 }))).code).toBe(Code.UNAVAILABLE);
  });

  it("refuses a set naming another identity, and a key that is not the certificate's, naming the file; the old set stays in use", async () => {
    const certificates = await job(3_600);
    const { logger, errors } = errorLog();
    const reloader = await certificates.reloader("coordinator", { logger });
    const first = reloader.current();
    const { server } = await recordingServer(reloader.security);
    const files = certificates.files("coordinator");

    // worker-1's certificate and key in the coordinator's files: a good set, of another identity.
    await copyFile(certificates.files("worker-1").key, files.key);
    await copyFile(certificates.files("worker-1").certificate, files.certificate);
    expect(await reloader.poll()).toBe("refused");
    expect(await reloader.poll()).toBe("refused");
    expect(errors).toEqual([
      `new TLS credentials refused, the ones in use are kept: --tls-cert ${files.certificate}: names spiffe://trainfleet/job/rotation/worker/worker-1, but this process is spiffe://trainfleet/job/rotation/coordinator/coordinator: give it a certificate issued for its own identity`,
    ]);
    expect(reloader.current()).toBe(first);
    expect(await serverSerial(server.address, certificates.security("worker-1"))).toBe(serialOf(first.certificate));

    // A renewed certificate beside the old key.
    await writeFile(files.key, first.key);
    const renewed = await certificates.renew("coordinator");
    await writeFile(files.key, first.key);
    expect(await reloader.poll()).toBe("refused");
    expect(errors.at(-1)).toBe(
      `new TLS credentials refused, the ones in use are kept: --tls-key ${files.key}: is not the key of the certificate in ${files.certificate}`,
    );
    expect(reloader.current()).toBe(first);
    expect(await serverSerial(server.address, certificates.security("worker-1"))).toBe(serialOf(first.certificate));

    // The right key: switched, and the next handshake shows it.
    await writeFile(files.key, renewed.keyPem);
    expect(await reloader.poll()).toBe("switched");
    expect(await serverSerial(server.address, certificates.security("worker-1"))).toBe(serialOf(renewed.certificatePem));
    expect(errors).toHaveLength(2);
  });

  it("polls the files by itself and tells its subscribers of the set it switched to", async () => {
    const certificates = await job(3_600);
    const reloader = await certificates.reloader("worker-0", { intervalMs: 20 });
    const switched = new Promise<TransportSecurity>((resolve) => reloader.subscribe(resolve));
    const renewed = await certificates.renew("worker-0");
    expect(serialOf((await switched).certificate)).toBe(serialOf(renewed.certificatePem));
    expect(reloader.security.updates?.current()).toBe(reloader.current());
  });
});
