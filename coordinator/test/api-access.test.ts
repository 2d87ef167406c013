/**
 * Who gets at a coordinator's job, over a real HTTP status server and a real gRPC server on
 * 127.0.0.1: bearer tokens on the status API (401 without or with a wrong token, 200 with
 * the read or control token, /metrics per --metrics-open, the open probes and dashboard
 * page), the Host check against DNS rebinding (421; localhost, IPs, *.svc and
 * --allowed-hosts pass), a request target that is no path (400, not 500), and JobService's
 * tokens on gRPC (UNAUTHENTICATED, PERMISSION_DENIED, accepted). gRPC calls with metadata
 * go through grpc-js itself: proto's client sends none.
 */
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import type { DescMessage, DescMethod, MessageInitShape } from "@bufbuild/protobuf";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import type { JobStatus, RunningServer } from "@trainfleet/proto";
import { Code, JobPhase, JobService, JobSpecSchema } from "@trainfleet/proto";
import { silentLogger } from "@trainfleet/runtime";
import { resolveJobSpec } from "@trainfleet/spec";
import { afterEach, describe, expect, it } from "vitest";
import { Coordinator } from "../src/job/coordinator.js";
import { startCoordinatorServer } from "../src/server/coordinator-server.js";
import { ApiTokens } from "../src/status/api-tokens.js";
import type { StatusHttpOptions } from "../src/status/status-http-server.js";
import { startStatusHttpServer } from "../src/status/status-http-server.js";

const read = "read-token-0123456789abcdefghijklmnopqrstuvwxyz";
const control = "control-token-0123456789abcdefghijklmnopqrstuvw";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function jobCoordinator(jobId = "unit") {
  return new Coordinator({
    spec: resolveJobSpec(create(JobSpecSchema, { jobId, workers: { replicas: 1 }, parameterServers: { shards: 1 } })),
    leaseMs: 60_000,
    logger: silentLogger,
  });
}

async function startHttp(options: Partial<StatusHttpOptions> = {}) {
  const coordinator = jobCoordinator();
  const http = await startStatusHttpServer(coordinator, {
    listen: "127.0.0.1:0",
    logger: silentLogger,
    readiness: () => ({ ready: true, reason: "ok" }),
    tokens: { read, control },
    ...options,
  });
  cleanups.push(() => http.close(500));
  return { coordinator, http, url: http.url };
}

/** A GET with exactly these headers (node:http: fetch would not send a Host of our choosing). */
function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { headers }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode!, headers: response.headers, body }));
    });
    request.on("error", reject);
    request.end();
  });
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe("the status API's bearer tokens", () => {
  it("answers 401 with WWW-Authenticate: Bearer without a token, with a wrong one and with a malformed header, before saying which job runs here", async () => {
    const { url } = await startHttp();
    for (const path of ["/v1/jobs/unit", "/v1/jobs/unit/watch", "/v1/jobs/unit/workers", "/v1/jobs/another", "/metrics"]) {
      const missing = await get(`${url}${path}`);
      expect([path, missing.status, missing.headers["www-authenticate"]]).toEqual([path, 401, 'Bearer realm="trainfleet"']);
      const body = JSON.parse(missing.body) as { code: string; message: string };
      expect(body.code).toBe("unauthenticated");
      expect(body.message).toMatch(
        /^a bearer token is needed to read the (job's status|metrics): send the header "Authorization: Bearer TOKEN" with the read token/,
      );
      // Not even the running job's id, which a 404 would name.
      expect(missing.body).not.toContain('"unit"');
    }
    const wrong = await get(`${url}/v1/jobs/unit`, bearer(`${read}x`));
    expect([wrong.status, wrong.headers["www-authenticate"]]).toEqual([401, 'Bearer realm="trainfleet", error="invalid_token"']);
    expect((JSON.parse(wrong.body) as { message: string }).message).toMatch(/^the bearer token is not one of this coordinator's tokens/);
    expect(wrong.body).not.toContain(read);
    const basic = await get(`${url}/v1/jobs/unit`, { authorization: `Basic ${Buffer.from(`x:${read}`).toString("base64")}` });
    expect(basic.status).toBe(401);
    expect((JSON.parse(basic.body) as { message: string }).message).toMatch(/^the Authorization header is not "Bearer TOKEN"/);
  });

  it("serves the status, the workers and the event stream to the read token and to the control token", async () => {
    const { coordinator, url } = await startHttp();
    for (const token of [read, control]) {
      const status = await get(`${url}/v1/jobs/unit`, bearer(token));
      expect(status.status).toBe(200);
      expect((JSON.parse(status.body) as { jobId: string }).jobId).toBe("unit");
      expect((await get(`${url}/v1/jobs/unit/workers`, bearer(token))).status).toBe(200);
      const other = await get(`${url}/v1/jobs/another`, bearer(token));
      expect([other.status, JSON.parse(other.body)]).toEqual([
        404,
        { code: "not_found", message: 'no job "another" here: this coordinator runs job "unit"' },
      ]);
    }
    const controller = new AbortController();
    cleanups.push(() => controller.abort());
    const stream = await fetch(`${url}/v1/jobs/unit/watch`, { headers: bearer(read), signal: controller.signal });
    expect([stream.status, stream.headers.get("content-type")]).toEqual([200, "text/event-stream; charset=utf-8"]);
    const first = new TextDecoder().decode((await stream.body!.getReader().read()).value);
    expect(first).toMatch(new RegExp(`^id: ${coordinator.revision}\nevent: status\ndata: \\{"jobId":"unit"`));
  });

  it("keeps /healthz, /readyz and the dashboard page open, and /metrics open only with metricsOpen", async () => {
    const closed = await startHttp();
    for (const path of ["/healthz", "/readyz", "/", "/index.html", "/favicon.svg"])
      expect([path, (await get(`${closed.url}${path}`)).status]).toEqual([path, 200]);
    expect((await get(`${closed.url}/metrics`)).status).toBe(401);
    const metrics = await get(`${closed.url}/metrics`, bearer(read));
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('trainfleet_job_phase{job_id="unit",phase="pending"} 1\n');
    const open = await startHttp({ metricsOpen: true });
    expect((await get(`${open.url}/metrics`)).status).toBe(200);
    expect((await get(`${open.url}/v1/jobs/unit`)).status).toBe(401);
  });

  it("is open to anyone without tokens", async () => {
    const { url } = await startHttp({ tokens: {} });
    expect((await get(`${url}/v1/jobs/unit`)).status).toBe(200);
    expect((await get(`${url}/metrics`)).status).toBe(200);
  });

  it("refuses tokens that are short, hold what a header cannot, or are the same for both rights, naming where they came from", () => {
    expect(() => new ApiTokens({ read: "short", sources: { read: "--read-token-file /t/read" } })).toThrow(
      "--read-token-file /t/read: the token has 5 characters; give at least 16 (for example 32 random bytes in base64url)",
    );
    expect(() => new ApiTokens({ control: "0123456789abcdef ghi" })).toThrow(
      "the control token: the token may hold only letters, digits and - . _ ~ + / (then = padding), to fit an Authorization header",
    );
    expect(() => new ApiTokens({ read, control: read })).toThrow(
      "the read and the control token are the same: give each right a token of its own",
    );
    // Constant time is a property of the code (api-tokens.ts compares SHA-256 digests with timingSafeEqual), not timed here.
    const tokens = new ApiTokens({ read, control });
    expect([tokens.access(`Bearer ${read}`), tokens.access(`bearer  ${control}`), tokens.access(`Bearer ${read.slice(0, -1)}`)]).toEqual([
      { kind: "granted", right: "read" },
      { kind: "granted", right: "control" },
      { kind: "wrong" },
    ]);
  });
});

describe("the Host check", () => {
  it("answers IP addresses, localhost (kubectl port-forward), *.svc and --allowed-hosts, and refuses any other name with 421", async () => {
    const { http, url } = await startHttp({ allowedHosts: ["coordinator.example.com"] });
    const port = http.port;
    for (const host of [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      "localhost",
      `LOCALHOST:${port}`,
      `[::1]:${port}`,
      `job-coordinator.team.svc:${port}`,
      `coordinator.example.com:${port}`,
      "coordinator.example.com.",
    ]) {
      expect([host, (await get(`${url}/v1/jobs/unit`, { host, ...bearer(read) })).status]).toEqual([host, 200]);
    }
    for (const host of [`evil.example:${port}`, "evil.example", "localhost.evil.example", "svc.evil.example", `[::1`, "a b"]) {
      const refused = await get(`${url}/v1/jobs/unit`, { host, ...bearer(read) });
      expect([host, refused.status]).toEqual([host, 421]);
      expect((JSON.parse(refused.body) as { message: string }).message).toContain("the names given with --allowed-hosts");
    }
    // Probes and the page too: a rebinding page learns nothing.
    expect((await get(`${url}/`, { host: "evil.example" })).status).toBe(421);
  });

  it("answers 400, not 500, to a request target that is no path", async () => {
    const { http } = await startHttp();
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(http.port, "127.0.0.1", () =>
        socket.write(`GET http://[ HTTP/1.1\r\nHost: 127.0.0.1:${http.port}\r\nConnection: close\r\n\r\n`),
      );
      let text = "";
      socket.setEncoding("utf8");
      socket.on("data", (chunk: string) => (text += chunk));
      socket.on("end", () => resolve(text));
      socket.on("error", reject);
    });
    expect(reply.split("\r\n")[0]).toBe("HTTP/1.1 400 Bad Request");
    expect(reply).toContain('"message":"the request target \\"http://[\\" is not a URL path"');
  });
});

/** A JobService client that sends `authorization: Bearer TOKEN` metadata (when given a token). */
function jobClient(address: string, token: string | undefined) {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  cleanups.push(() => client.close());
  const metadata = () => {
    const m = new grpc.Metadata();
    if (token !== undefined) m.set("authorization", `Bearer ${token}`);
    return m;
  };
  const codec = (method: DescMethod) => ({
    path: `/${JobService.typeName}/${method.name}`,
    serialize: (value: MessageInitShape<DescMessage>) => Buffer.from(toBinary(method.input, create(method.input, value))),
    deserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
  });
  const unary = (method: DescMethod, request: MessageInitShape<DescMessage>) =>
    new Promise<unknown>((resolve, reject) => {
      const { path, serialize, deserialize } = codec(method);
      client.makeUnaryRequest(path, serialize, deserialize, request, metadata(), {}, (error, response) =>
        error ? reject(error) : resolve(response),
      );
    });
  return {
    getJob: () => unary(JobService.method.getJob, {}) as Promise<{ status: JobStatus }>,
    submitJob: (spec: object) => unary(JobService.method.submitJob, { spec }) as Promise<{ status: JobStatus }>,
    /** The first status WatchJob sends, or its error. */
    firstWatched: () =>
      new Promise<JobStatus>((resolve, reject) => {
        const { path, serialize, deserialize } = codec(JobService.method.watchJob);
        const call = client.makeServerStreamRequest(path, serialize, deserialize, {}, metadata(), {});
        call.on("data", (response: { status: JobStatus }) => {
          resolve(response.status);
          call.cancel();
        });
        call.on("error", (error: grpc.ServiceError) => {
          if (error.code !== grpc.status.CANCELLED) reject(error);
        });
      }),
  };
}

async function refusedWith(promise: Promise<unknown>): Promise<{ code: number; details: string }> {
  const error = (await promise.then(
    () => undefined,
    (e: unknown) => e,
  )) as grpc.ServiceError | undefined;
  expect(error, "the call should have been refused").toBeDefined();
  return { code: error!.code, details: error!.details };
}

describe("JobService's bearer tokens", () => {
  async function startGrpc(coordinator: Coordinator): Promise<string> {
    const server: RunningServer = await startCoordinatorServer(coordinator, "127.0.0.1:0", { tokens: { read, control } });
    cleanups.push(() => server.close(500));
    return server.address;
  }

  it("refuses GetJob and WatchJob without a token or with a wrong one (UNAUTHENTICATED), and serves them to the read token", async () => {
    const address = await startGrpc(jobCoordinator());
    for (const token of [undefined, "not-a-token-of-this-coordinator"]) {
      const jobs = jobClient(address, token);
      for (const call of [jobs.getJob(), jobs.firstWatched()]) {
        const refused = await refusedWith(call);
        expect(refused.code).toBe(Code.UNAUTHENTICATED);
        expect(refused.details).toMatch(/send the metadata "authorization: Bearer TOKEN" with the read token/);
      }
    }
    const jobs = jobClient(address, read);
    expect((await jobs.getJob()).status).toMatchObject({ jobId: "unit", phase: JobPhase.PENDING });
    expect(await jobs.firstWatched()).toMatchObject({ jobId: "unit", phase: JobPhase.PENDING });
  });

  it("refuses SubmitJob to the read token (PERMISSION_DENIED, naming the control token) and accepts it with the control token", async () => {
    const coordinator = new Coordinator({ leaseMs: 60_000, logger: silentLogger });
    const address = await startGrpc(coordinator);
    const spec = { jobId: "submitted", workers: { replicas: 1 }, parameterServers: { shards: 1 } };
    const denied = await refusedWith(jobClient(address, read).submitJob(spec));
    expect(denied).toEqual({
      code: Code.PERMISSION_DENIED,
      details:
        "the read token does not allow you to submit a job (JobService.SubmitJob): send the control token (a `trainfleet run` job folder's tokens/control; `trainfleet status` takes --token-file or TRAINFLEET_TOKEN) instead",
    });
    expect((await refusedWith(jobClient(address, undefined).submitJob(spec))).code).toBe(Code.UNAUTHENTICATED);
    expect(coordinator.status().jobId).toBe("");
    const accepted = await jobClient(address, control).submitJob(spec);
    expect(accepted.status).toMatchObject({ jobId: "submitted", phase: JobPhase.PENDING });
    expect((await jobClient(address, control).getJob()).status.jobId).toBe("submitted");
  });

  it("with a read token only, submits nobody's job", async () => {
    const coordinator = new Coordinator({ leaseMs: 60_000, logger: silentLogger });
    const server = await startCoordinatorServer(coordinator, "127.0.0.1:0", { tokens: { read } });
    cleanups.push(() => server.close(500));
    const denied = await refusedWith(jobClient(server.address, read).submitJob({ jobId: "x" }));
    expect(denied).toEqual({
      code: Code.PERMISSION_DENIED,
      details:
        "nobody may submit a job (JobService.SubmitJob) here: this coordinator was started without a control token (--control-token-file)",
    });
  });
});
