/**
 * StatusEncoder.fresh(), what a GET is served: the current revision's encoding while it is
 * younger than maxAgeMs, a new one after (heartbeat times move without a revision), and a
 * finished job's status as it was, however late the GET comes.
 */
import { create } from "@bufbuild/protobuf";
import { JobPhase, JobStatusSchema } from "@trainfleet/proto";
import { describe, expect, it } from "vitest";
import { ChangeNotifier } from "../src/status/change-notifier.js";
import { StatusEncoder } from "../src/status/status-encoder.js";
import type { StatusSource } from "../src/status/status-watch.js";

/** A job whose every status build reads the clock, as a heartbeat time would. */
class Job implements StatusSource {
  readonly #changes = new ChangeNotifier();
  phase = JobPhase.RUNNING;
  clock = 0;
  get revision() {
    return this.#changes.revision;
  }
  status() {
    return create(JobStatusSchema, { phase: this.phase, finishedUnixMs: BigInt(this.clock) });
  }
  changedSince(revision: number, signal: AbortSignal) {
    return this.#changes.after(revision, signal);
  }
  finish() {
    this.phase = JobPhase.SUCCEEDED;
    this.#changes.changed();
  }
}

describe("StatusEncoder.fresh", () => {
  it("encodes a running job's status again once it is older than maxAgeMs, and a finished job's never again", () => {
    const job = new Job();
    const encoder = new StatusEncoder(job, { maxAgeMs: 1000, now: () => job.clock });
    const first = encoder.fresh().json;
    job.clock = 500;
    expect(encoder.fresh().json).toBe(first);
    job.clock = 1500;
    expect(encoder.fresh().json).not.toBe(first);

    job.finish();
    const final = encoder.fresh().json;
    expect(JSON.parse(final)).toMatchObject({ phase: "JOB_PHASE_SUCCEEDED" });
    job.clock = 60_000;
    expect(encoder.fresh().json).toBe(final);
    expect(encoder.serialisations).toBe(3);
  });
});
