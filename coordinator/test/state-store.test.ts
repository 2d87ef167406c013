/**
 * The coordinator's state in a local file: what is saved is what a restarted coordinator
 * loads; no file is no state; a damaged record is refused naming the file and the field;
 * saves land whole (a new file renamed over the old one) and in call order.
 */
import { linkSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, JobSpecSchema, TrainfleetError } from "@trainfleet/proto";
import { resolveJobSpec } from "@trainfleet/spec";
import { describe, expect, it } from "vitest";
import type { CoordinatorState } from "../src/state/coordinator-state.js";
import { coordinatorStateFormat, coordinatorStateJson, parseCoordinatorState } from "../src/state/coordinator-state.js";
import { fileStateStore } from "../src/state/file-state-store.js";

const spec = resolveJobSpec(
  create(JobSpecSchema, { jobId: "resumable", workers: { replicas: 2 }, parameterServers: { shards: 2 }, checkpoints: { everySteps: 5 } }),
);
const state: CoordinatorState = {
  jobId: "resumable",
  spec,
  checkpointDir: "/data/resumable/checkpoints",
  generation: 3,
  finished: false,
  updatedUnixMs: 1_764_370_000_000,
};

const folder = () => mkdtempSync(join(tmpdir(), "trainfleet-state-"));

async function rejection(promise: Promise<unknown>): Promise<TrainfleetError> {
  const error: unknown = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (!(error instanceof TrainfleetError)) throw new Error(`expected a TrainfleetError, got ${String(error)}`);
  return error;
}

describe("the record's JSON form", () => {
  it("has the format tag, the fields, and the spec as protobuf JSON; it reads back equal", () => {
    const text = coordinatorStateJson(state);
    const json = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(json)).toEqual(["format", "jobId", "checkpointDir", "generation", "finished", "updatedUnixMs", "updatedAt", "spec"]);
    expect(json["format"]).toBe(coordinatorStateFormat);
    expect(json["updatedAt"]).toBe("2025-11-28T22:46:40.000Z");
    expect((json["spec"] as { jobId: string }).jobId).toBe("resumable");
    expect(parseCoordinatorState(text, "test")).toEqual(state);
  });

  it("with a job id given, refuses another job's record", () => {
    expect(() => parseCoordinatorState(coordinatorStateJson(state), "NATS KV b/other", "other")).toThrow(
      'coordinator state in NATS KV b/other: jobId: "resumable", but this is job "other"\'s record',
    );
  });
});

describe("fileStateStore", () => {
  it("loads undefined when nothing was saved, even without the folder", async () => {
    const store = fileStateStore(join(folder(), "not", "yet", "state.json"));
    expect(await store.load()).toBeUndefined();
    await store.close();
  });

  it("saves and loads the same record, making the folder; a second store (a restarted coordinator) loads it too", async () => {
    const path = join(folder(), "job", "state.json");
    const store = fileStateStore(path);
    expect(store.description).toBe(`file ${path}`);
    await store.save(state);
    expect(await store.load()).toEqual(state);
    const finished = { ...state, generation: 4, finished: true, checkpointDir: "", updatedUnixMs: state.updatedUnixMs + 1 };
    await store.save(finished);
    await store.close();
    const restarted = fileStateStore(path);
    expect(await restarted.load()).toEqual(finished);
    await restarted.close();
    expect(readFileSync(path, "utf8")).toBe(coordinatorStateJson(finished));
  });

  it("replaces the file rather than rewriting it: a reader of the old file still sees the old record whole", async () => {
    const dir = folder();
    const path = join(dir, "state.json");
    const store = fileStateStore(path);
    await store.save(state);
    // A hard link keeps the old file: written in place, it would change under it.
    linkSync(path, join(dir, "reader"));
    const before = statSync(path).ino;
    await store.save({ ...state, generation: 4 });
    expect(statSync(path).ino).not.toBe(before);
    expect(readFileSync(join(dir, "reader"), "utf8")).toBe(coordinatorStateJson(state));
    expect(readFileSync(path, "utf8")).toBe(coordinatorStateJson({ ...state, generation: 4 }));
    expect(readdirSync(dir).sort()).toEqual(["reader", "state.json"]);
    await store.close();
  });

  it("leaves no temporary file, and saves started together land in call order", async () => {
    const dir = folder();
    const path = join(dir, "state.json");
    const store = fileStateStore(path);
    const saves = Array.from({ length: 20 }, (_, i) => store.save({ ...state, generation: i + 1 }));
    const loaded = store.load();
    await Promise.all(saves);
    expect((await loaded)?.generation).toBe(20);
    expect(readdirSync(dir)).toEqual(["state.json"]);
    await store.close();
  });

  it("refuses to save a record that could not be loaded, and keeps the old one", async () => {
    const path = join(folder(), "state.json");
    const store = fileStateStore(path);
    await store.save(state);
    const error = await rejection(store.save({ ...state, generation: -1 }));
    expect([error.code, error.field, error.message]).toEqual([
      Code.INVALID_ARGUMENT,
      "generation",
      `coordinator state in file ${path}: generation: must be a non-negative integer, got -1`,
    ]);
    expect((await rejection(store.save({ ...state, jobId: "another" }))).field).toBe("jobId");
    expect(await store.load()).toEqual(state);
    await store.close();
  });

  it("refuses to load or save once closed", async () => {
    const path = join(folder(), "state.json");
    const store = fileStateStore(path);
    await store.close();
    const error = await rejection(store.save(state));
    expect([error.code, error.message]).toEqual([Code.FAILED_PRECONDITION, `file ${path} is closed`]);
    expect((await rejection(store.load())).code).toBe(Code.FAILED_PRECONDITION);
  });

  it("a save that cannot be written says which file and why", async () => {
    const dir = folder();
    // The state file's folder is a file: mkdir fails.
    writeFileSync(join(dir, "blocker"), "");
    const path = join(dir, "blocker", "state.json");
    const error = await rejection(fileStateStore(path).save(state));
    expect(error.code).toBe(Code.UNAVAILABLE);
    expect(error.message.startsWith(`cannot save the coordinator state to file ${path}: `)).toBe(true);
    expect(error.message).toMatch(/EEXIST|ENOTDIR/);
  });

  const good = JSON.parse(coordinatorStateJson(state)) as Record<string, unknown>;
  const cases: Array<[string, string, string, string]> = [
    ["not JSON", '{"format": "trainfleet-coordinator-state/1",', "(record)", "not JSON: SyntaxError"],
    ["not an object", "[]", "(record)", "must be a JSON object"],
    [
      "another format",
      JSON.stringify({ ...good, format: "trainfleet-coordinator-state/2" }),
      "format",
      '"trainfleet-coordinator-state/2" is not "trainfleet-coordinator-state/1", which this trainfleet reads',
    ],
    ["no jobId", JSON.stringify({ ...good, jobId: undefined }), "jobId", "must be a non-empty string, got undefined"],
    ["no generation", JSON.stringify({ ...good, generation: undefined }), "generation", "must be a non-negative integer, got undefined"],
    ["a fractional generation", JSON.stringify({ ...good, generation: 1.5 }), "generation", "must be a non-negative integer, got 1.5"],
    ["finished as a string", JSON.stringify({ ...good, finished: "yes" }), "finished", 'must be true or false, got "yes"'],
    ["no checkpointDir", JSON.stringify({ ...good, checkpointDir: null }), "checkpointDir", 'must be a string ("" for none), got null'],
    ["no updatedUnixMs", JSON.stringify({ ...good, updatedUnixMs: "now" }), "updatedUnixMs", 'must be a non-negative integer, got "now"'],
    ["no spec", JSON.stringify({ ...good, spec: undefined }), "spec", "missing: the record must hold the job's spec"],
    [
      "a spec that is not a JobSpec",
      JSON.stringify({ ...good, spec: { jobId: "resumable", colour: "red" } }),
      "spec",
      'key "colour" is unknown',
    ],
    [
      "a spec that fails validation",
      JSON.stringify({ ...good, spec: { ...(good["spec"] as object), training: { epochs: 20000 } } }),
      "spec.training.epochs",
      "spec.training.epochs: 20000 must be between 1 and 10000",
    ],
    ["a spec of another job", JSON.stringify({ ...good, jobId: "other" }), "jobId", `"other", but the spec's is "resumable"`],
  ];
  it.each(cases)("refuses a record with %s: INVALID_ARGUMENT naming the file and the field", async (_, text, field, problem) => {
    const path = join(folder(), "state.json");
    writeFileSync(path, text);
    const store = fileStateStore(path);
    const error = await rejection(store.load());
    expect([error.code, error.field]).toEqual([Code.INVALID_ARGUMENT, field]);
    expect(error.message.startsWith(`coordinator state in file ${path}: ${field}: `)).toBe(true);
    expect(error.message).toContain(problem);
    await store.close();
  });

  it("saves fast enough to run before every generation change (measured, printed)", async () => {
    const dir = folder();
    const store = fileStateStore(join(dir, "state.json"));
    await store.save(state);
    const times: number[] = [];
    for (let generation = 1; generation <= 100; generation++) {
      const start = performance.now();
      await store.save({ ...state, generation });
      times.push(performance.now() - start);
    }
    await store.close();
    times.sort((a, b) => a - b);
    console.log(
      `file state store: save (write, fsync, rename, fsync folder) of a ${statSync(join(dir, "state.json")).size}-byte record over 100 saves: median ${times[50]!.toFixed(2)} ms, p99 ${times[98]!.toFixed(2)} ms, max ${times[99]!.toFixed(2)} ms`,
    );
    expect(readdirSync(dir)).toEqual(["state.json"]);
  });
});
