/**
 * The coordinator's state in NATS JetStream KV, on a real nats-server (started here,
 * stopped with SIGTERM): what one store saves, another (a restarted coordinator, on a new
 * connection) loads; each job has its own key; the bucket is made on first use with file
 * storage and history 1; a damaged record is refused naming the bucket and key; and a
 * server that is not there, has no JetStream, or goes away during a save gives an error
 * that says so, not a hang.
 */

import { create } from "@bufbuild/protobuf";
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { connect, headers } from "@nats-io/transport-node";
import { Code, JobSpecSchema, TrainfleetError } from "@trainfleet/proto";
import { resolveJobSpec } from "@trainfleet/spec";
import { NatsServer } from "@trainfleet/testing/fixtures/nats-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CoordinatorState } from "../src/state/coordinator-state.js";
import { coordinatorStateJson } from "../src/state/coordinator-state.js";
import { natsStateStore } from "../src/state/nats-state-store.js";

let server: NatsServer;
let client: NatsConnection;
beforeAll(async () => {
  server = await NatsServer.start();
  client = await connect({ servers: server.url });
});
afterAll(async () => {
  await client?.close();
  await server?.stop();
});

function stateOf(jobId: string, generation = 1): CoordinatorState {
  const spec = resolveJobSpec(create(JobSpecSchema, { jobId, workers: { replicas: 2 }, parameterServers: { shards: 1 } }));
  return {
    jobId,
    spec,
    checkpointDir: `/data/${jobId}/checkpoints`,
    generation,
    finished: false,
    updatedUnixMs: 1_764_370_000_000 + generation,
  };
}

async function rejection(promise: Promise<unknown>): Promise<TrainfleetError> {
  const error: unknown = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (!(error instanceof TrainfleetError)) throw new Error(`expected a TrainfleetError, got ${String(error)}`);
  return error;
}

describe("natsStateStore", () => {
  it("saves and loads a record under the job's key, in a bucket it creates with file storage and history 1", async () => {
    const store = await natsStateStore({ url: server.url, jobId: "round-trip" });
    expect(store.description).toBe(`NATS KV trainfleet_coordinators/round-trip at ${server.url}`);
    expect(await store.load()).toBeUndefined();
    const state = stateOf("round-trip", 2);
    await store.save(state);
    expect(await store.load()).toEqual(state);
    await store.close();
    const manager = await jetstreamManager(client);
    const stream = await manager.streams.info("KV_trainfleet_coordinators");
    expect([stream.config.storage, stream.config.max_msgs_per_subject, stream.config.subjects]).toEqual([
      StorageType.File,
      1,
      ["$KV.trainfleet_coordinators.>"],
    ]);
    const stored = await manager.streams.getMessage("KV_trainfleet_coordinators", {
      last_by_subj: "$KV.trainfleet_coordinators.round-trip",
    });
    expect(stored?.string()).toBe(coordinatorStateJson(state));
  });

  it("a second store (a restarted coordinator) loads what the first saved, and saves over it", async () => {
    const first = await natsStateStore({ url: server.url, jobId: "restarted" });
    await first.save(stateOf("restarted", 1));
    await first.save(stateOf("restarted", 2));
    await first.close();
    const second = await natsStateStore({ url: server.url, jobId: "restarted" });
    expect(await second.load()).toEqual(stateOf("restarted", 2));
    const over = { ...stateOf("restarted", 3), finished: true };
    await second.save(over);
    await second.close();
    const third = await natsStateStore({ url: server.url, jobId: "restarted" });
    expect(await third.load()).toEqual(over);
    await third.close();
  });

  it("keeps each job's record apart, and a bucket of its own apart from the default one", async () => {
    const [a, b, none, elsewhere] = await Promise.all([
      natsStateStore({ url: server.url, jobId: "job-a" }),
      natsStateStore({ url: server.url, jobId: "job-b" }),
      natsStateStore({ url: server.url, jobId: "job-none" }),
      natsStateStore({ url: server.url, jobId: "job-a", bucket: "other_coordinators" }),
    ]);
    await Promise.all([a.save(stateOf("job-a", 5)), b.save(stateOf("job-b", 7))]);
    expect([(await a.load())?.generation, (await b.load())?.generation, await none.load(), await elsewhere.load()]).toEqual([
      5,
      7,
      undefined,
      undefined,
    ]);
    expect(elsewhere.description).toBe(`NATS KV other_coordinators/job-a at ${server.url}`);
    await Promise.all([a, b, none, elsewhere].map((store) => store.close()));
  });

  it("lands saves started together in call order", async () => {
    const store = await natsStateStore({ url: server.url, jobId: "in-order" });
    const saves = Array.from({ length: 20 }, (_, i) => store.save(stateOf("in-order", i + 1)));
    const loaded = store.load();
    await Promise.all(saves);
    expect((await loaded)?.generation).toBe(20);
    await store.close();
    expect((await rejection(store.save(stateOf("in-order", 21)))).code).toBe(Code.FAILED_PRECONDITION);
  });

  it("refuses a damaged record, or another job's, naming the bucket, the key and the field; a deleted key is no record", async () => {
    const js = jetstream(client);
    const store = await natsStateStore({ url: server.url, jobId: "damaged" });
    const where = `coordinator state in NATS KV trainfleet_coordinators/damaged at ${server.url}`;
    await js.publish("$KV.trainfleet_coordinators.damaged", "{not json");
    let error = await rejection(store.load());
    expect([error.code, error.field]).toEqual([Code.INVALID_ARGUMENT, "(record)"]);
    expect(error.message.startsWith(`${where}: (record): not JSON: SyntaxError`)).toBe(true);
    await js.publish("$KV.trainfleet_coordinators.damaged", coordinatorStateJson(stateOf("someone-else")));
    error = await rejection(store.load());
    expect([error.code, error.field, error.message]).toEqual([
      Code.INVALID_ARGUMENT,
      "jobId",
      `${where}: jobId: "someone-else", but this is job "damaged"'s record`,
    ]);
    const text = coordinatorStateJson(stateOf("damaged")).replace('"generation": 1', '"generation": "one"');
    await js.publish("$KV.trainfleet_coordinators.damaged", text);
    error = await rejection(store.load());
    expect([error.code, error.field, error.message]).toEqual([
      Code.INVALID_ARGUMENT,
      "generation",
      `${where}: generation: must be a non-negative integer, got "one"`,
    ]);
    // What `nats kv del` writes: an empty message marked as a deletion.
    const deletion = headers();
    deletion.set("KV-Operation", "DEL");
    await js.publish("$KV.trainfleet_coordinators.damaged", undefined, { headers: deletion });
    expect(await store.load()).toBeUndefined();
    await store.close();
  });

  it("saves fast enough to run before every generation change (measured, printed)", async () => {
    const store = await natsStateStore({ url: server.url, jobId: "latency" });
    await store.save(stateOf("latency", 0));
    const times: number[] = [];
    for (let generation = 1; generation <= 100; generation++) {
      const state = stateOf("latency", generation);
      const start = performance.now();
      await store.save(state);
      times.push(performance.now() - start);
    }
    await store.close();
    times.sort((a, b) => a - b);
    const bytes = coordinatorStateJson(stateOf("latency", 100)).length;
    console.log(
      `NATS KV state store: save (put, JetStream ack, file storage) of a ${bytes}-byte record over 100 saves: median ${times[50]!.toFixed(2)} ms, p99 ${times[98]!.toFixed(2)} ms, max ${times[99]!.toFixed(2)} ms`,
    );
  });
});

describe("natsStateStore when NATS is not as it should be", () => {
  it("a server that is not there: UNAVAILABLE, naming the URL and how to start one", async () => {
    // A port where a server was a moment ago: nothing listens there now.
    const gone = await NatsServer.start();
    await gone.stop();
    const error = await rejection(natsStateStore({ url: gone.url, jobId: "unreachable" }));
    expect(error.code).toBe(Code.UNAVAILABLE);
    expect(error.message).toMatch(
      new RegExp(
        `^cannot reach NATS at ${gone.url} to keep the coordinator's state: .+; start one with JetStream on \\(nats-server -js\\), or leave out the NATS URL to keep the state in a local file$`,
      ),
    );
  });

  it("a server without JetStream: FAILED_PRECONDITION, saying to start it with -js", async () => {
    const plain = await NatsServer.start(-1, { jetstream: false });
    try {
      const error = await rejection(natsStateStore({ url: plain.url, jobId: "no-jetstream" }));
      expect([error.code, error.message]).toEqual([
        Code.FAILED_PRECONDITION,
        `cannot open or create the KV bucket trainfleet_coordinators on NATS at ${plain.url}: jetstream is not enabled; the server must run with JetStream on (nats-server -js)`,
      ]);
    } finally {
      await plain.stop();
    }
  });

  it("a server that goes away: a save fails within its timeout, naming the store, rather than hanging", async () => {
    const doomed = await NatsServer.start();
    const store = await natsStateStore({ url: doomed.url, jobId: "server-gone", timeoutMs: 1_000 });
    await store.save(stateOf("server-gone", 1));
    await doomed.stop();
    const error = await rejection(store.save(stateOf("server-gone", 2)));
    expect([Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED], error.message).toContain(error.code);
    console.log(`NATS KV state store, save with the server gone: ${error.message}`);
    expect(
      error.message.startsWith(`cannot save the coordinator state to NATS KV trainfleet_coordinators/server-gone at ${doomed.url}: `),
    ).toBe(true);
    await store.close();
  });

  it("refuses a bucket name that NATS KV would not take, naming the field", async () => {
    const error = await rejection(natsStateStore({ url: server.url, jobId: "x", bucket: "no.dots" }));
    expect([error.code, error.field, error.message]).toEqual([
      Code.INVALID_ARGUMENT,
      "bucket",
      'bucket: "no.dots" is not a NATS KV bucket name (letters, digits, "-" and "_" only)',
    ]);
  });
});
