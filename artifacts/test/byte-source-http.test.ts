import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code } from "@trainfleet/proto";
import { type HttpFileServer, type HttpFileServerOptions, startHttpFileServer } from "@trainfleet/testing/fixtures/http-file-server";
import { rejection } from "@trainfleet/testing/rejection";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { openSource, type SourceOptions } from "../src/byte-source.js";

const data = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) % 251);
/** Retries fast enough that a test of three tries takes milliseconds. */
const fast: SourceOptions = { retries: 2, retryDelayMs: 1, maxRetryDelayMs: 5, timeoutMs: 5_000 };

let root: string;
const servers: HttpFileServer[] = [];

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "trainfleet-http-source-"));
  writeFileSync(join(root, "data.bin"), data);
  mkdirSync(join(root, "dir"));
  writeFileSync(join(root, "dir", "empty.bin"), new Uint8Array(0));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function serve(options: Omit<HttpFileServerOptions, "root"> = {}): Promise<HttpFileServer> {
  const server = await startHttpFileServer({ root, ...options });
  servers.push(server);
  return server;
}

/** A port with nothing listening: one the OS handed out, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("http(s) byte source", () => {
  it("reads the size with HEAD, a range with a Range request, and the whole file with a plain GET", async () => {
    const server = await serve();
    const source = openSource(`${server.url}data.bin`, fast);
    expect(source.uri).toBe(`${server.url}data.bin`);
    expect(await source.size()).toBe(1000);
    expect(await source.read(100, 50)).toEqual(data.slice(100, 150));
    expect(await source.readAll()).toEqual(data);
    expect(server.requests.map((request) => [request.method, request.range])).toEqual([
      ["HEAD", undefined],
      ["GET", "bytes=100-149"],
      ["GET", undefined],
    ]);
  });

  it("returns fewer bytes only where the file ends, and none past it", async () => {
    const server = await serve();
    const source = openSource(`${server.url}data.bin`, fast);
    expect(await source.read(990, 50)).toEqual(data.slice(990));
    expect(await source.read(1000, 10)).toEqual(new Uint8Array(0));
    expect(await source.read(5000, 10)).toEqual(new Uint8Array(0));
    expect(await source.read(3, 0)).toEqual(new Uint8Array(0));
    const empty = openSource(`${server.url}dir/empty.bin`, fast);
    expect(await empty.size()).toBe(0);
    expect(await empty.readAll()).toEqual(new Uint8Array(0));
  });

  it("takes the size from a one-byte range's Content-Range when the server refuses HEAD", async () => {
    const server = await serve({ refuseHead: true });
    expect(await openSource(`${server.url}data.bin`, fast).size()).toBe(1000);
    expect(server.requests.map((request) => [request.method, request.range])).toEqual([
      ["HEAD", undefined],
      ["GET", "bytes=0-0"],
    ]);
  });

  it("cuts the range out of a whole-file answer from a server that ignores Range, but only up to maxWholeBodyBytes", async () => {
    const server = await serve({ ignoreRange: true });
    expect(await openSource(`${server.url}data.bin`, fast).read(100, 50)).toEqual(data.slice(100, 150));
    const error = await rejection(openSource(`${server.url}data.bin`, { ...fast, maxWholeBodyBytes: 500 }).read(100, 50));
    expect(error.code).toBe(Code.FAILED_PRECONDITION);
    expect(error.message).toContain(`${server.url}data.bin: the server ignores Range requests`);
    expect(error.message).toContain("maxWholeBodyBytes");
  });

  it("retries 503 answers: fails twice, succeeds on the third request", async () => {
    const server = await serve({ failFirst: 2 });
    expect(await openSource(`${server.url}data.bin`, fast).read(10, 20)).toEqual(data.slice(10, 30));
    expect(server.requests).toHaveLength(3);
  });

  it("retries a dropped connection and a request that got no answer within timeoutMs", async () => {
    const dropping = await serve({ dropFirst: 1 });
    expect(await openSource(`${dropping.url}data.bin`, fast).read(0, 8)).toEqual(data.slice(0, 8));
    expect(dropping.requests).toHaveLength(2);
    const stalling = await serve({ stallFirst: 1 });
    expect(await openSource(`${stalling.url}data.bin`, { ...fast, timeoutMs: 300 }).read(0, 8)).toEqual(data.slice(0, 8));
    expect(stalling.requests).toHaveLength(2);
  });

  it("fails UNAVAILABLE after the configured attempts, naming the URL without its credentials or signature", async () => {
    const server = await serve({ failAlways: true });
    const address = `http://127.0.0.1:${server.port}/data.bin`;
    const source = openSource(
      `http://alice:s3cret-pass@127.0.0.1:${server.port}/data.bin?X-Amz-Signature=deadbeef99&X-Amz-Expires=60`,
      fast,
    );
    expect(source.uri).toBe(address);
    const started = performance.now();
    const error = await rejection(source.read(0, 10));
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(error.code).toBe(Code.UNAVAILABLE);
    expect(error.message).toMatch(new RegExp(`^${address.replace(/[.?]/g, "\\$&")}: unreachable after 3 attempts: HTTP 503 .*Fix: `));
    for (const secret of ["alice", "s3cret-pass", "deadbeef99"]) expect(error.message).not.toContain(secret);
    expect(server.requests).toHaveLength(3);
    // The credentials still went to the server, as Basic auth, and the signature in the query.
    expect(server.requests[0]?.authorization).toBe(`Basic ${Buffer.from("alice:s3cret-pass").toString("base64")}`);
    expect(server.requests[0]?.path).toBe("/data.bin?X-Amz-Signature=deadbeef99&X-Amz-Expires=60");
  });

  it("sends user:password from the URL as Basic auth; wrong ones are PERMISSION_DENIED at once", async () => {
    const server = await serve({ basicAuth: { user: "alice", password: "right" } });
    expect(await openSource(`http://alice:right@127.0.0.1:${server.port}/data.bin`, fast).readAll()).toEqual(data);
    const error = await rejection(openSource(`http://alice:wrong-pw@127.0.0.1:${server.port}/data.bin`, fast).read(0, 4));
    expect(error.code).toBe(Code.PERMISSION_DENIED);
    expect(error.message).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/data\.bin: access denied \(HTTP 401/);
    expect(error.message).toContain("user:password in the URL");
    expect(error.message).not.toContain("wrong-pw");
    expect(server.requests).toHaveLength(2);
  });

  it("a missing file is NOT_FOUND without retries", async () => {
    const server = await serve();
    const error = await rejection(openSource(`${server.url}nope.bin`, fast).size());
    expect(error.code).toBe(Code.NOT_FOUND);
    expect(error.message).toBe(`${server.url}nope.bin: no such file (HTTP 404 Not Found)`);
    expect(server.requests).toHaveLength(1);
  });

  it("an aborted signal cancels at once: before the first request, and in the middle of one", async () => {
    const server = await serve({ failAlways: true });
    const already = new AbortController();
    already.abort();
    const before = await rejection(openSource(`${server.url}data.bin`, fast).read(0, 4, already.signal));
    expect(before.code).toBe(Code.CANCELLED);
    expect(server.requests).toHaveLength(0);

    const midway = new AbortController();
    const aborting = await serve({ stallFirst: 1, onRequest: () => midway.abort() });
    const started = performance.now();
    const error = await rejection(openSource(`${aborting.url}data.bin`, { retryDelayMs: 60_000 }).read(0, 4, midway.signal));
    expect(error.code).toBe(Code.CANCELLED);
    expect(error.message).toBe(`${aborting.url}data.bin: read cancelled`);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(aborting.requests).toHaveLength(1);
  });

  it("a refused connection is UNAVAILABLE, saying so", async () => {
    const port = await closedPort();
    const error = await rejection(openSource(`http://127.0.0.1:${port}/data.bin`, fast).size());
    expect(error.code).toBe(Code.UNAVAILABLE);
    expect(error.message).toContain(`http://127.0.0.1:${port}/data.bin: unreachable after 3 attempts: `);
    expect(error.message).toContain("ECONNREFUSED");
  });

  it("rejects a read with a negative or fractional offset before any request", async () => {
    const server = await serve();
    const source = openSource(`${server.url}data.bin`, fast);
    expect((await rejection(source.read(-1, 4))).code).toBe(Code.INVALID_ARGUMENT);
    expect((await rejection(source.read(0, 1.5))).code).toBe(Code.INVALID_ARGUMENT);
    expect(server.requests).toHaveLength(0);
  });
});
