/**
 * The TCP data channel across a certificate renewal (issue 14, rotation): a shard and a worker
 * whose credentials are reloaded from their files. After the first certificates (a few
 * seconds' life) have expired, a connection made before the switch still pushes and pulls, a
 * new one made with the renewed set does too, and the shard's next handshake presents its
 * renewed certificate (`setSecureContext`); the worker's expired first set is refused.
 */
import { X509Certificate } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import type { ConnectionOptions } from "node:tls";
import { connect } from "node:tls";
import type { ParameterClient } from "@trainfleet/dataplane";
import { createParameterClient } from "@trainfleet/dataplane";
import type { TransportSecurity } from "@trainfleet/proto";
import { DataPlane, WireDtype } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import { silentLogger, validityOf } from "@trainfleet/runtime";
import { makeJobCertificates } from "@trainfleet/testing/fixtures/job-certificates";
import { RawConnection } from "@trainfleet/testing/shard/raw-data-channel";
import type { ShardHarness } from "@trainfleet/testing/shard/shard-harness";
import { startShardHarness } from "@trainfleet/testing/shard/shard-harness";
import { afterEach, describe, expect, it } from "vitest";

const jobId = "job-a";
const open: Array<{ close(): unknown }> = [];
afterEach(async () => {
  for (const resource of open.splice(0).reverse()) await resource.close();
});

function client(harness: ShardHarness, security: TransportSecurity): ParameterClient {
  const created = createParameterClient({
    jobId,
    shards: [{ index: 0, address: harness.server.address, dataAddress: harness.data.address, ...harness.config.range }],
    chunkBytes: harness.config.chunkElements * 4,
    dataPlane: DataPlane.TCP,
    wireDtype: WireDtype.FLOAT32,
    security,
  });
  open.push(created);
  return created;
}

/** One step of the job's single rank; returns the version it pulled. */
function step(worker: ParameterClient, index: number): Promise<number> {
  const gradient = Float32Array.from({ length: 2000 }, (_, i) => Math.sin(i * 0.37 + index) * 0.01);
  return worker.pushThenPull({ generation: 1, step: index, rank: 0 }, gradient, new Float32Array(2000));
}

/** The serial of the certificate the shard presents to a new connection made with `security`. */
async function shardSerial(address: string, security: TransportSecurity): Promise<string> {
  const colon = address.lastIndexOf(":");
  const socket = connect({
    host: address.slice(0, colon),
    port: Number(address.slice(colon + 1)),
    ca: security.ca,
    cert: security.certificate,
    key: security.key,
    checkServerIdentity: () => undefined,
  });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", resolve);
      socket.once("error", reject);
    });
    return socket.getPeerCertificate().serialNumber;
  } finally {
    // Ended, not destroyed: the shard reads this side's certificate after the client's handshake is done (TLS 1.3).
    socket.end();
    await new Promise((resolve) => socket.once("close", resolve));
  }
}

const serialOf = (pem: string | Buffer) => new X509Certificate(pem).serialNumber;

describe("the TCP data channel with reloaded credentials", () => {
  it("keeps its open connections, takes new ones with the renewed certificates after the first expired, and refuses the expired set", async () => {
    const certificates = await makeJobCertificates(jobId, [
      ["parameter-server", "ps-0"],
      ["worker", "worker-0"],
    ]);
    open.push(certificates);
    for (const name of ["ps-0", "worker-0"]) await certificates.renew(name, { validitySeconds: 3 });
    const shardReloader = await certificates.reloader("ps-0");
    const workerReloader = await certificates.reloader("worker-0");
    const expired = workerReloader.current();
    const refusals: string[] = [];
    const logger: Logger = { ...silentLogger, warn: (_fields, message) => void refusals.push(message), child: () => logger };
    const harness = await startShardHarness(
      { jobId, worldSize: 1 },
      { shard: shardReloader.security, client: workerReloader.security, logger },
    );
    open.push(harness);
    const before = client(harness, workerReloader.security);
    expect(await step(before, 0)).toBe(1);

    const renewedShard = await certificates.renew("ps-0", { validitySeconds: 3_600 });
    await certificates.renew("worker-0", { validitySeconds: 3_600 });
    expect(await shardReloader.poll()).toBe("switched");
    expect(await workerReloader.poll()).toBe("switched");
    // Past the first certificates' end (X.509 times are whole seconds).
    await delay(validityOf(expired.certificate).notAfter + 1_000 - Date.now());

    expect(await step(before, 1)).toBe(2);
    expect(await step(client(harness, workerReloader.security), 2)).toBe(3);
    expect(await shardSerial(harness.data.address, workerReloader.current())).toBe(serialOf(renewedShard.certificatePem));

    const tls: ConnectionOptions = { ca: expired.ca, cert: expired.certificate, key: expired.key, checkServerIdentity: () => undefined };
    await expect(RawConnection.open(harness.data.address, jobId, tls)).rejects.toThrow("the shard closed the data channel connection");
    // Refused in the handshake (logged once), never served.
    expect(refusals).toEqual(["data channel connection refused: TLS handshake failed"]);
    expect(harness.shard.version).toBe(3);
  });
});
