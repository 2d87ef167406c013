import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { S3ServiceException } from "@aws-sdk/client-s3";
import { Code, type TrainfleetError } from "@trainfleet/proto";
import { type S3Server, startS3Server } from "@trainfleet/testing/fixtures/s3-server";
import { rejection } from "@trainfleet/testing/rejection";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSource, resolveRelative, type SourceOptions } from "../src/byte-source.js";
import { TransientFailure } from "../src/retry.js";
import { s3Failure, s3Settings } from "../src/s3-source.js";
import { resolveSourceOptions } from "../src/source-options.js";

const shard = Uint8Array.from({ length: 5000 }, (_, i) => (i * 13) % 253);
const weights = Uint8Array.from({ length: 64 }, (_, i) => 255 - i);

let server: S3Server;
/** Everything from options, nothing from this process's environment. */
let options: SourceOptions;

beforeAll(async () => {
  server = await startS3Server({ bucket: "models" });
  await server.put("shards/part-0.bin", shard);
  await server.put("users/ann/model.json", new TextEncoder().encode("{}"));
  await server.put("users/ann/weights.bin", weights);
  options = {
    env: {},
    s3: { endpoint: server.endpoint, region: server.region, credentials: server.credentials },
    retries: 1,
    retryDelayMs: 1,
    maxRetryDelayMs: 5,
  };
});
afterAll(async () => {
  await server?.close();
});

describe("s3 byte source (against s3rver)", () => {
  it("reads the size, a range and the whole object", async () => {
    const source = openSource(server.url("shards/part-0.bin"), options);
    expect(source.uri).toBe("s3://models/shards/part-0.bin");
    expect(await source.size()).toBe(5000);
    expect(await source.read(1234, 100)).toEqual(shard.slice(1234, 1334));
    expect(await source.readAll()).toEqual(shard);
  });

  it("returns fewer bytes only where the object ends, and none past it", async () => {
    const source = openSource(server.url("shards/part-0.bin"), options);
    expect(await source.read(4990, 100)).toEqual(shard.slice(4990));
    expect(await source.read(5000, 10)).toEqual(new Uint8Array(0));
    expect(await source.read(0, 0)).toEqual(new Uint8Array(0));
  });

  it("takes endpoint, region and keys from the AWS_* environment it is given", async () => {
    const source = openSource(server.url("users/ann/weights.bin"), { env: server.env() });
    expect(await source.readAll()).toEqual(weights);
    const settings = s3Settings(resolveSourceOptions({ env: { ...server.env(), AWS_REGION: "" } }));
    expect([settings.endpoint, settings.region, settings.forcePathStyle]).toEqual([server.endpoint, "us-east-1", true]);
    expect(s3Settings(resolveSourceOptions({ env: { AWS_ENDPOINT_URL: "http://other:9000", AWS_REGION: "eu-west-1" } }))).toMatchObject({
      endpoint: "http://other:9000",
      region: "eu-west-1",
      forcePathStyle: true,
      credentials: undefined,
    });
    expect(s3Settings(resolveSourceOptions({ env: {} }))).toMatchObject({
      endpoint: undefined,
      region: "us-east-1",
      forcePathStyle: false,
    });
  });

  it("reads a file named relative to model.json from the same folder of the bucket", async () => {
    const sibling = resolveRelative(server.url("users/ann/model.json"), "weights.bin");
    expect(sibling).toBe("s3://models/users/ann/weights.bin");
    expect(await openSource(sibling, options).read(8, 8)).toEqual(weights.slice(8, 16));
  });

  it("a missing key is NOT_FOUND, for size, read and readAll alike", async () => {
    const source = openSource(server.url("shards/part-9.bin"), options);
    for (const attempt of [source.size(), source.read(0, 10), source.readAll()]) {
      const error = await rejection(attempt);
      expect(error.code).toBe(Code.NOT_FOUND);
      expect(error.message).toBe("s3://models/shards/part-9.bin: no such file");
    }
  });

  it("a wrong bucket is NOT_FOUND, naming the bucket", async () => {
    const error = await rejection(openSource("s3://no-such-bucket/shards/part-0.bin", options).read(0, 10));
    expect(error.code).toBe(Code.NOT_FOUND);
    expect(error.message).toMatch(/^s3:\/\/no-such-bucket\/shards\/part-0\.bin: no such bucket "no-such-bucket"\. Fix: /);
  });

  it("keys the server refuses are PERMISSION_DENIED, naming the setting to check and not the secret", async () => {
    const env = { ...server.env(), AWS_ACCESS_KEY_ID: "WRONGKEY", AWS_SECRET_ACCESS_KEY: "wrong-secret-value" };
    const error = await rejection(openSource(server.url("shards/part-0.bin"), { env, retries: 0 }).read(0, 10));
    expect(error.code).toBe(Code.PERMISSION_DENIED);
    expect(error.message).toMatch(
      /^s3:\/\/models\/shards\/part-0\.bin: access denied \(InvalidAccessKeyId, HTTP 403\)\. Fix: check AWS_ACCESS_KEY_ID/,
    );
    expect(error.message).not.toContain("wrong-secret-value");
    const given = await rejection(
      openSource(server.url("shards/part-0.bin"), {
        ...options,
        s3: { endpoint: server.endpoint, credentials: { accessKeyId: "X", secretAccessKey: "Y" } },
      }).size(),
    );
    expect(given.code).toBe(Code.PERMISSION_DENIED);
    expect(given.message).toContain("SourceOptions.s3.credentials");
  });

  it("an endpoint that refuses connections is UNAVAILABLE after the configured attempts", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const started = performance.now();
    const error = await rejection(
      openSource(server.url("shards/part-0.bin"), { ...options, s3: { ...options.s3, endpoint: `http://127.0.0.1:${port}` } }).read(0, 4),
    );
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(error.code).toBe(Code.UNAVAILABLE);
    expect(error.message).toMatch(
      /^s3:\/\/models\/shards\/part-0\.bin: unreachable after 2 attempts: .*ECONNREFUSED.*Fix: check that the S3 endpoint http:\/\/127\.0\.0\.1:\d+ is reachable/,
    );
  });

  it("an aborted signal cancels before any request", async () => {
    const controller = new AbortController();
    controller.abort();
    const error = await rejection(openSource(server.url("shards/part-0.bin"), options).readAll(controller.signal));
    expect(error.code).toBe(Code.CANCELLED);
  });

  it("sorts S3's answers: throttling and server errors are retried, the rest final", () => {
    const settings = s3Settings(resolveSourceOptions({ env: {} }));
    const answer = (name: string, httpStatusCode: number) =>
      s3Failure(
        "s3://b/k",
        "b",
        settings,
        new S3ServiceException({ name, $fault: httpStatusCode >= 500 ? "server" : "client", $metadata: { httpStatusCode } }),
      );
    expect(answer("SlowDown", 503)).toBeInstanceOf(TransientFailure);
    expect(answer("InternalError", 500)).toBeInstanceOf(TransientFailure);
    expect(answer("RequestTimeout", 400)).toBeInstanceOf(TransientFailure);
    expect(answer("TooManyRequestsException", 429)).toBeInstanceOf(TransientFailure);
    expect((answer("NoSuchKey", 404) as TrainfleetError).code).toBe(Code.NOT_FOUND);
    expect((answer("AccessDenied", 403) as TrainfleetError).code).toBe(Code.PERMISSION_DENIED);
    expect((answer("AccessDenied", 403) as TrainfleetError).message).toContain("AWS SDK's default credentials");
    expect((answer("PermanentRedirect", 301) as TrainfleetError).message).toContain("set AWS_REGION");
    expect((answer("InvalidArgument", 400) as TrainfleetError).code).toBe(Code.FAILED_PRECONDITION);
  });
});
