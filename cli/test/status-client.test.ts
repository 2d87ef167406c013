/**
 * `trainfleet status`'s client: which URLs it takes, that a dropped event stream is
 * resumed with Last-Event-ID, and that the job's token goes as Authorization: Bearer and a
 * refusal is said in the CLI's terms, never retried. The server here is a real HTTP server
 * on 127.0.0.1 that plays the coordinator's part (dropping the first connection on purpose,
 * or answering 401).
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { create } from "@bufbuild/protobuf";
import { Code, JobPhase, JobStatusSchema, jobStatusToJson, TrainfleetError } from "@trainfleet/proto";
import { formatServerSentEvent } from "@trainfleet/runtime";
import { afterEach, describe, expect, it } from "vitest";
import { followStatus, getStatus, statusTarget } from "../src/status-client.js";

const closers: Array<() => void> = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

const event = (id: number, phase: JobPhase) =>
  formatServerSentEvent({
    id: String(id),
    event: "status",
    data: JSON.stringify(jobStatusToJson(create(JobStatusSchema, { jobId: "j", phase, step: id }))),
  });

describe("statusTarget", () => {
  it.each([
    ["http://127.0.0.1:7080/v1/jobs/fashion-mnist", "http://127.0.0.1:7080", "fashion-mnist"],
    ["http://127.0.0.1:7080/v1/jobs/a%2Fb/watch", "http://127.0.0.1:7080", "a/b"],
    ["http://h:1/", "http://h:1", "flag-job"],
    ["h:1", "http://h:1", "flag-job"],
  ])("%s is job %s at %s", (url, origin, jobId) => {
    expect(statusTarget(url, "flag-job")).toEqual({ origin, jobId });
  });

  it("refuses what is not a status URL, saying what is", () => {
    expect(() => statusTarget("http://h:1/metrics", "j")).toThrow(
      '--url: "http://h:1/metrics" is not a status URL; give http://HOST:PORT/v1/jobs/JOB or http://HOST:PORT',
    );
    expect(() => statusTarget("ftp://h/", "j")).toThrow('--url: "ftp://h/" is not an http(s) URL');
  });
});

describe("followStatus", () => {
  it("reconnects with Last-Event-ID when the stream drops before the job ends, and stops at the final status", async () => {
    const seen: Array<string | undefined> = [];
    const server = createServer((request, response) => {
      seen.push(request.headers["last-event-id"] as string | undefined);
      response.writeHead(200, { "content-type": "text/event-stream; charset=utf-8" });
      if (seen.length === 1) {
        response.write(event(1, JobPhase.RUNNING));
        // The connection closes mid-stream (no final chunk) once the event is on its way.
        response.socket!.end();
      } else response.end(event(2, JobPhase.SUCCEEDED));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    closers.push(() => server.close());
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const statuses = [];
    for await (const { id, status } of followStatus({ origin, jobId: "j" }, new AbortController().signal))
      statuses.push([id, status.phase]);
    expect(statuses).toEqual([
      ["1", JobPhase.RUNNING],
      ["2", JobPhase.SUCCEEDED],
    ]);
    expect(seen).toEqual([undefined, "1"]);
  });

  it("gives up with UNAVAILABLE naming the URL when nothing answers, and maps the API's JSON errors to codes", async () => {
    const server = createServer((_request, response) => {
      response.writeHead(404, { "content-type": "application/json" });
      response.end(JSON.stringify({ code: "not_found", message: 'no job "j" here: this coordinator runs job "k"' }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const missing = await getStatus({ origin, jobId: "j" }, new AbortController().signal).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(TrainfleetError);
    expect([(missing as TrainfleetError).code, (missing as TrainfleetError).message]).toEqual([
      Code.NOT_FOUND,
      'no job "j" here: this coordinator runs job "k"',
    ]);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const gone = await (async () => {
      for await (const _ of followStatus({ origin, jobId: "j" }, new AbortController().signal, 0)) void _;
    })().catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(TrainfleetError);
    expect((gone as TrainfleetError).code).toBe(Code.UNAVAILABLE);
    expect((gone as TrainfleetError).message).toBe(`cannot read the coordinator's status API at ${origin}/v1/jobs/j/watch: ECONNREFUSED`);
  });
});

describe("tokens", () => {
  it("sends the token as Authorization: Bearer, and says a refusal in the CLI's terms without retrying or naming the token", async () => {
    const seen: Array<string | undefined> = [];
    const server = createServer((request, response) => {
      seen.push(request.headers.authorization);
      if (request.headers.authorization !== "Bearer the-read-token-0123456789") {
        response.writeHead(401, { "content-type": "application/json", "www-authenticate": 'Bearer realm="trainfleet"' });
        return response.end(JSON.stringify({ code: "unauthenticated", message: "a bearer token is needed" }));
      }
      response.writeHead(200, { "content-type": "text/event-stream; charset=utf-8" });
      response.end(event(7, JobPhase.SUCCEEDED));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    closers.push(() => server.close());
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const signal = new AbortController().signal;

    const statuses = [];
    const target = { origin, jobId: "j", token: { value: "the-read-token-0123456789", from: "/jobs/j/tokens/read" } };
    for await (const { id } of followStatus(target, signal)) statuses.push(id);
    expect(statuses).toEqual(["7"]);

    const without = (await getStatus({ origin, jobId: "j" }, signal).catch((e: unknown) => e)) as TrainfleetError;
    expect([without.code, without.message]).toEqual([
      Code.UNAUTHENTICATED,
      `the coordinator at ${origin} needs the job's read token: give --token-file FILE or TRAINFLEET_TOKEN (a \`trainfleet run\` job folder holds its read token in tokens/read), or give \`trainfleet status\` the job folder instead of the URL`,
    ]);
    const wrong = { origin, jobId: "j", token: { value: "a-wrong-token-0123456789", from: "TRAINFLEET_TOKEN" } };
    const refused = await (async () => {
      for await (const _ of followStatus(wrong, signal)) void _;
    })().catch((e: unknown) => e as TrainfleetError);
    expect(refused).toBeInstanceOf(TrainfleetError);
    expect((refused as TrainfleetError).code).toBe(Code.UNAUTHENTICATED);
    expect((refused as TrainfleetError).message).toMatch(
      new RegExp(
        `^the coordinator at ${origin} refused the token from TRAINFLEET_TOKEN \\(not its read or control token\\): give --token-file FILE`,
      ),
    );
    expect((refused as TrainfleetError).message).not.toContain("a-wrong-token");
    // One request each: a refused token is not retried.
    expect(seen).toEqual(["Bearer the-read-token-0123456789", undefined, "Bearer a-wrong-token-0123456789"]);
  });
});
