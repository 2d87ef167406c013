/**
 * The data plane over mutual TLS, against a real shard (its TCP data channel and its gRPC
 * service on 127.0.0.1) holding a certificate of the job's CA for parameter-server ps-0:
 *
 * - workers' pushes and pulls give the parameters of plaintext, bit for bit, on both data
 *   planes; the shard reads TLS connections through 'data' events (an accepted TLS socket
 *   cannot be read in place), plaintext ones in place;
 * - refused, with the shard's version and parameters unchanged: no certificate, another
 *   job's CA, a parameter-server's certificate, and a coordinator's pushing as a rank (the
 *   coordinator may only pull: the final parameters it saves);
 * - a worker pushing as a rank its generation gave another worker (rank_identities) is
 *   refused: each transport hands the shard the pusher's identity;
 * - a worker refuses a shard whose certificate is ps-1 when it dialled ps-0, and pushes nothing.
 */
import type { ConnectionOptions } from "node:tls";
import type { ParameterClient } from "@trainfleet/dataplane";
import { createParameterClient, errorFromFrame, FrameType } from "@trainfleet/dataplane";
import type { TransportSecurity } from "@trainfleet/proto";
import { Code, createClient, DataPlane, ParameterServerService, WireDtype } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import { silentLogger } from "@trainfleet/runtime";
import type { JobCertificates } from "@trainfleet/testing/fixtures/job-certificates";
import { makeJobCertificates } from "@trainfleet/testing/fixtures/job-certificates";
import { rejection } from "@trainfleet/testing/rejection";
import { RawConnection, rawTcpPush } from "@trainfleet/testing/shard/raw-data-channel";
import type { ShardHarness } from "@trainfleet/testing/shard/shard-harness";
import { gradientChunks, startShardHarness } from "@trainfleet/testing/shard/shard-harness";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

const jobId = "job-a";
let job: JobCertificates;
/** Another CA's certificates for the same job id: a stranger's. */
let stranger: JobCertificates;

beforeAll(async () => {
  job = await makeJobCertificates(jobId, [
    ["parameter-server", "ps-0"],
    ["parameter-server", "ps-1"],
    ["worker", "worker-0"],
    ["worker", "worker-1"],
    ["coordinator", "coordinator"],
  ]);
  stranger = await makeJobCertificates(jobId, [["worker", "worker-0"]]);
});
afterAll(async () => {
  await job?.close();
  await stranger?.close();
});

const open: Array<{ close(): unknown }> = [];
afterEach(async () => {
  for (const resource of open.splice(0).reverse()) await resource.close();
});

/** Warnings the shard's servers logged. */
function warnings(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger: Logger = { ...silentLogger, warn: (_fields, message) => void lines.push(message), child: () => logger };
  return { logger, lines };
}

/** A shard on both data planes; over mutual TLS as ps-0 (or `shardName`) unless `tls` is false. */
async function shard(options: {
  tls: boolean;
  shardName?: string;
  logger?: Logger;
  config?: Parameters<typeof startShardHarness>[0];
}): Promise<ShardHarness> {
  const harness = await startShardHarness(
    options.config ?? {},
    options.tls
      ? {
          shard: job.security(options.shardName ?? "ps-0"),
          client: job.security("worker-0"),
          shardName: options.shardName ?? "ps-0",
          ...(options.logger === undefined ? {} : { logger: options.logger }),
        }
      : undefined,
  );
  open.push(harness);
  return harness;
}

/** A parameter client of the harness's one shard (index 0, range [1000, 2000) of a 2000-value vector). */
function client(harness: ShardHarness, plane: DataPlane, security?: TransportSecurity, wireDtype = WireDtype.FLOAT32): ParameterClient {
  const created = createParameterClient({
    jobId,
    shards: [{ index: 0, address: harness.server.address, dataAddress: harness.data.address, ...harness.config.range }],
    chunkBytes: harness.config.chunkElements * 4,
    dataPlane: plane,
    wireDtype,
    security,
  });
  open.push(created);
  return created;
}

/** The options of a raw TLS client presenting `member`'s certificate (or none), trusting the job's CA. */
function rawTls(member: TransportSecurity | undefined): ConnectionOptions {
  return {
    ca: job.security("ps-0").ca,
    ...(member === undefined ? {} : { cert: member.certificate, key: member.key }),
    checkServerIdentity: () => undefined,
  };
}

const bits = (values: Float32Array) => Array.from(new Uint32Array(values.buffer, values.byteOffset, values.length));

function state(harness: ShardHarness) {
  return { version: harness.shard.version, parameters: bits(harness.shard.parameters) };
}

/** A gradient that differs by rank, step and element, so that any mix-up shows. */
function gradient(rank: number, step: number): Float32Array {
  return Float32Array.from({ length: 2000 }, (_, i) => Math.sin(i * 0.37 + rank * 1.3 + step * 0.11) * 0.01);
}

/** Three steps of two ranks over `plane`; the parameters each rank pulled after each step, as bits. */
async function train(harness: ShardHarness, plane: DataPlane, security: TransportSecurity[] | undefined, wireDtype: WireDtype) {
  const ranks = [0, 1].map((rank) => client(harness, plane, security?.[rank], wireDtype));
  const pulled: number[][] = [];
  for (let step = 0; step < 3; step++) {
    const intos = ranks.map(() => new Float32Array(2000));
    const versions = await Promise.all(
      ranks.map((c, rank) => c.pushThenPull({ generation: 1, step, rank }, gradient(rank, step), intos[rank]!)),
    );
    expect(versions).toEqual([step + 1, step + 1]);
    for (const into of intos) pulled.push(bits(into.subarray(1000, 2000)));
  }
  return { pulled, final: state(harness) };
}

describe("over mutual TLS, a worker's pushes and pulls", () => {
  const planes: Array<[string, DataPlane, WireDtype]> = [
    ["the TCP data channel", DataPlane.TCP, WireDtype.FLOAT32],
    ["the TCP data channel in bfloat16", DataPlane.TCP, WireDtype.BFLOAT16],
    ["gRPC", DataPlane.GRPC, WireDtype.FLOAT32],
  ];

  it.each(planes)("over %s give the parameters of plaintext, bit for bit", async (_name, plane, wireDtype) => {
    const plain = await shard({ tls: false });
    const secured = await shard({ tls: true });
    const expected = await train(plain, plane, undefined, wireDtype);
    const actual = await train(secured, plane, [job.security("worker-0"), job.security("worker-1")], wireDtype);
    expect(actual.final.version).toBe(3);
    expect(actual).toEqual(expected);
    // Which receive path ran: the kernel writes plaintext in place; TLS is decrypted, then copied.
    const tcp = plane === DataPlane.TCP ? 2 : 0;
    expect([plain.data.connectionsReadInPlace, plain.data.connectionsReadByCopy]).toEqual([tcp, 0]);
    expect([secured.data.connectionsReadInPlace, secured.data.connectionsReadByCopy]).toEqual([0, tcp]);
  });

  it("let the coordinator pull (the final parameters it saves) on both data planes", async () => {
    const secured = await shard({ tls: true });
    for (const plane of [DataPlane.TCP, DataPlane.GRPC]) {
      const into = new Float32Array(2000);
      expect(await client(secured, plane, job.security("coordinator")).pull(0, into)).toBe(0);
      expect(bits(into.subarray(1000))).toEqual(bits(secured.shard.parameters));
    }
  });
});

describe("a shard over mutual TLS refuses, and stays unchanged", () => {
  let harness: ShardHarness;
  let log: ReturnType<typeof warnings>;
  let before: { version: number; parameters: Float32Array };

  /** Rank 1's gradient: what each refused caller tries to push. */
  const forged = () => gradientChunks(harness.config, { step: 0, rank: 1 }, () => 1000);

  /** Rank 0's good push first, so that a refused push could disturb a step in progress. */
  async function setUp(): Promise<void> {
    log = warnings();
    harness = await shard({ tls: true, logger: log.logger });
    await harness.client.push(gradientChunks(harness.config, { step: 0, rank: 0 }, () => 0.25));
    before = { version: harness.shard.version, parameters: Float32Array.from(harness.shard.parameters) };
  }

  /** The shard as it was; then rank 1's real push completes the step exactly as if no refused attempt had come. */
  async function expectUnchanged(): Promise<void> {
    expect(state(harness)).toEqual({ version: before.version, parameters: bits(before.parameters) });
    expect(harness.shard.version).toBe(0);
    await harness.client.push(gradientChunks(harness.config, { step: 0, rank: 1 }, () => 0.75));
    expect(harness.shard.version).toBe(1);
    expect(bits(harness.shard.parameters)).toEqual(bits(Float32Array.from(before.parameters, (p) => p - 0.1 * 0.5)));
  }

  describe("on the TCP data channel", () => {
    it("a client without a certificate, and one without TLS: the handshake fails, logged once each", async () => {
      await setUp();
      await expect(rawTcpPush(harness.data.address, forged(), rawTls(undefined))).rejects.toThrow(
        /certificate required|socket hang up|ECONNRESET|closed/,
      );
      await until(() => log.lines.length === 1);
      await expect(rawTcpPush(harness.data.address, forged())).rejects.toThrow();
      await until(() => log.lines.length === 2);
      expect(log.lines).toEqual(Array(2).fill("data channel connection refused: TLS handshake failed"));
      await expectUnchanged();
    });

    it("a client whose certificate another job's CA issued", async () => {
      await setUp();
      await expect(rawTcpPush(harness.data.address, forged(), rawTls(stranger.security("worker-0")))).rejects.toThrow();
      await until(() => log.lines.length === 1);
      expect(log.lines).toEqual(["data channel connection refused: TLS handshake failed"]);
      await expectUnchanged();
    });

    it("a parameter-server's certificate: told why (PERMISSION_DENIED) and closed, before any push", async () => {
      await setUp();
      const error = await rejection(RawConnection.open(harness.data.address, jobId, rawTls(job.security("ps-1"))));
      expect(error.code).toBe(Code.PERMISSION_DENIED);
      expect(error.message).toBe(
        "this shard serves only a worker or coordinator of job job-a: its certificate is a parameter-server's (ps-1), and this needs a worker or coordinator",
      );
      expect(log.lines).toEqual(["data channel connection refused"]);
      await expectUnchanged();
    });

    it("a coordinator's certificate pushing as a rank: the push is refused PERMISSION_DENIED, the connection may still pull", async () => {
      await setUp();
      const connection = await RawConnection.open(harness.data.address, jobId, rawTls(job.security("coordinator")));
      try {
        connection.push(forged());
        const reply = await connection.next();
        expect(reply.header.type).toBe(FrameType.ERROR);
        const error = errorFromFrame(reply.header, reply.payload);
        expect([error.code, error.message]).toEqual([
          Code.PERMISSION_DENIED,
          "this shard takes pushes only from a worker of job job-a: its certificate is a coordinator's (coordinator), and this needs a worker",
        ]);
        // An empty push (no chunk asks for a place) gets no ack either.
        connection.push([]);
        const empty = await connection.next();
        expect(errorFromFrame(empty.header, empty.payload).code).toBe(Code.PERMISSION_DENIED);
        expect(state(harness)).toEqual({ version: before.version, parameters: bits(before.parameters) });
        connection.pull(0);
        const frames = [];
        for (let f = await connection.next(); f.header.type === FrameType.PARAMS; f = await connection.next()) frames.push(f);
        expect(frames.map((f) => f.header.offset)).toEqual([1000, 1256, 1512, 1768]);
      } finally {
        connection.close();
      }
      await expectUnchanged();
    });
  });

  describe("on gRPC", () => {
    it("a client without a certificate, and one whose certificate another job's CA issued: UNAVAILABLE", async () => {
      await setUp();
      const plain = createClient(ParameterServerService, harness.server.address);
      open.push(plain);
      expect((await rejection(plain.push(forged(), { timeoutMs: 5_000 }))).code).toBe(Code.UNAVAILABLE);
      const other = createClient(ParameterServerService, harness.server.address, {
        security: stranger.security("worker-0"),
        server: { roles: ["parameter-server"], name: "ps-0" },
      });
      open.push(other);
      expect((await rejection(other.push(forged(), { timeoutMs: 5_000 }))).code).toBe(Code.UNAVAILABLE);
      await expectUnchanged();
    });

    it("a coordinator's or a parameter-server's certificate pushing as a rank: PERMISSION_DENIED naming the role needed", async () => {
      await setUp();
      for (const member of ["coordinator", "ps-1"]) {
        const caller = createClient(ParameterServerService, harness.server.address, {
          security: job.security(member),
          server: { roles: ["parameter-server"], name: "ps-0" },
        });
        open.push(caller);
        const error = await rejection(caller.push(forged(), { timeoutMs: 5_000 }));
        expect(error.code).toBe(Code.PERMISSION_DENIED);
        expect(error.message).toMatch(
          /^this shard takes pushes only from a worker of job job-a: its certificate is a .+, and this needs a worker$/,
        );
      }
      // A parameter-server may not pull either; the coordinator may (the test above).
      const shardCaller = createClient(ParameterServerService, harness.server.address, {
        security: job.security("ps-1"),
        server: { roles: ["parameter-server"], name: "ps-0" },
      });
      open.push(shardCaller);
      const pull = await rejection(
        (async () => {
          for await (const _ of shardCaller.pull({ jobId, minVersion: 0 }, { timeoutMs: 5_000 })) void _;
        })(),
      );
      expect([pull.code, pull.message]).toEqual([
        Code.PERMISSION_DENIED,
        "this shard serves only a worker or coordinator of job job-a: its certificate is a parameter-server's (ps-1), and this needs a worker or coordinator",
      ]);
      expect(log.lines).toEqual(["push refused", "push refused", "pull refused"]);
      await expectUnchanged();
    });
  });
});

describe("a shard whose generation names each rank's worker", () => {
  it.each([
    ["the TCP data channel", DataPlane.TCP],
    ["gRPC", DataPlane.GRPC],
  ])("refuses over %s a worker pushing as another worker's rank, and is unchanged", async (_name, plane) => {
    const secured = await shard({ tls: true, config: { rankIdentities: ["worker-0", "worker-1"] } });
    const before = state(secured);
    const impostor = client(secured, plane, job.security("worker-1"));
    const error = await rejection(impostor.push({ generation: 1, step: 0, rank: 0 }, gradient(0, 0)));
    expect([error.code, error.field, error.message]).toEqual([
      Code.PERMISSION_DENIED,
      "rank",
      "rank: rank 0 of generation 1 is worker-0's; worker worker-1 may not push as it",
    ]);
    expect(state(secured)).toEqual(before);
    // The rank's own worker pushes it.
    await client(secured, plane, job.security("worker-0")).push({ generation: 1, step: 0, rank: 0 }, gradient(0, 0));
    await impostor.push({ generation: 1, step: 0, rank: 1 }, gradient(1, 0));
    expect(secured.shard.version).toBe(1);
  });
});

describe("a worker over mutual TLS", () => {
  it.each([
    ["the TCP data channel", DataPlane.TCP],
    ["gRPC", DataPlane.GRPC],
  ])("refuses a shard whose certificate is ps-1 when it dialled ps-0 over %s, and pushes nothing", async (_name, plane) => {
    const impostor = await shard({ tls: true, shardName: "ps-1" });
    const before = state(impostor);
    const worker = client(impostor, plane, job.security("worker-0"));
    const error = await rejection(worker.push({ generation: 1, step: 0, rank: 0 }, gradient(0, 0), { timeoutMs: 5_000 }));
    expect(error.code).toBe(Code.UNAVAILABLE);
    if (plane === DataPlane.TCP)
      expect(error.message).toBe(
        `data channel to ${impostor.data.address}: the shard at ${impostor.data.address} is not the shard this client dialled: its certificate is parameter-server ps-1's, not ps-0's`,
      );
    expect(impostor.shard.stats.bytesIn).toBe(0);
    expect(state(impostor)).toEqual(before);
  });
});

/** Resolves once `condition` holds, checking after each turn of the event loop (bounded). */
async function until(condition: () => boolean): Promise<void> {
  for (let turns = 0; !condition(); turns++) {
    if (turns > 100_000) throw new Error("condition never held");
    await new Promise((resolve) => setImmediate(resolve));
  }
}
