/**
 * The worker's step reports on one stream (progress-stream.ts): reports go out in order on
 * a single call, a stream that breaks is said once and the next report opens another, and
 * close() ends the call after what was sent. The coordinator's side of the stream runs over
 * real gRPC in test/coordinator/member-access.test.ts and every training test.
 */
import type { Logger } from "@trainfleet/runtime";
import { silentLogger } from "@trainfleet/runtime";
import { describe, expect, it } from "vitest";
import { ProgressStream } from "../src/progress-stream.js";

interface Call {
  steps: number[];
  ended: boolean;
  fail: (error: Error) => void;
}

/** A coordinator client whose ReportProgress calls read their stream as grpc-js would, and can be failed. */
function coordinator() {
  const calls: Call[] = [];
  const client = {
    reportProgress(requests: AsyncIterable<{ step?: number }>) {
      const call: Call = { steps: [], ended: false, fail: () => {} };
      calls.push(call);
      return new Promise<Record<string, never>>((resolve, reject) => {
        call.fail = reject;
        void (async () => {
          for await (const request of requests) call.steps.push(request.step ?? -1);
          call.ended = true;
          resolve({});
        })();
      });
    },
  };
  return { calls, client: client as never };
}

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { ...silentLogger, warn: (_, message) => warnings.push(message), child: () => recordingLogger(), warnings };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("ProgressStream", () => {
  it("sends every report on one call, in order, and ends it on close once they are read", async () => {
    const { calls, client } = coordinator();
    const stream = new ProgressStream(client, silentLogger);
    for (const step of [0, 1, 2]) stream.send({ step });
    await tick();
    stream.send({ step: 3 });
    stream.close();
    await tick();
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ steps: [0, 1, 2, 3], ended: true });
    stream.send({ step: 4 });
    expect(calls).toHaveLength(1);
  });

  it("says once that a stream broke, and opens another with the next report", async () => {
    const { calls, client } = coordinator();
    const logger = recordingLogger();
    const stream = new ProgressStream(client, logger);
    stream.send({ step: 0 });
    await tick();
    calls[0]!.fail(new Error("UNAVAILABLE: the coordinator went away"));
    await tick();
    expect(logger.warnings).toEqual(["the progress report stream broke; the next report opens another"]);
    stream.send({ step: 1 });
    stream.send({ step: 2 });
    await tick();
    expect(calls.map((call) => call.steps)).toEqual([[0], [1, 2]]);
    stream.close();
    await tick();
    expect(calls[1]!.ended).toBe(true);
    expect(logger.warnings).toHaveLength(1);
  });
});
