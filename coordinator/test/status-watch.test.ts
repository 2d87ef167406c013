/**
 * watchStatus folds progress within a phase: a watcher gets two statuses of the same phase at
 * least the interval apart (the newest one), while a new phase goes out at once, and the final
 * status ends the watch.
 */
import { setImmediate as turn } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import type { JobStatus } from "@trainfleet/proto";
import { JobPhase, JobStatusSchema } from "@trainfleet/proto";
import { describe, expect, it } from "vitest";
import { ChangeNotifier } from "../src/status/change-notifier.js";
import type { StatusSource } from "../src/status/status-watch.js";
import { watchStatus } from "../src/status/status-watch.js";

class Source implements StatusSource {
  readonly #changes = new ChangeNotifier();
  phase = JobPhase.RUNNING;
  builds = 0;
  get revision() {
    return this.#changes.revision;
  }
  status(): JobStatus {
    this.builds++;
    return create(JobStatusSchema, { phase: this.phase, step: this.#changes.revision });
  }
  changedSince(revision: number, signal: AbortSignal) {
    return this.#changes.after(revision, signal);
  }
  /** One change, then a turn of the event loop, so a waiting watcher could take it. */
  async change(phase = this.phase) {
    this.phase = phase;
    this.#changes.changed();
    await turn();
  }
}

describe("watchStatus", () => {
  it("holds back progress of the same phase and sends a new phase at once, with the newest revision", async () => {
    const source = new Source();
    await source.change();
    const controller = new AbortController();
    // An interval no test waits out: only the phase change can release the second status.
    const watch = watchStatus(source, { signal: controller.signal, samePhaseIntervalMs: 3_600_000 });
    expect((await watch.next()).value).toMatchObject({ revision: 1, status: { phase: JobPhase.RUNNING } });
    const second = watch.next();
    for (let step = 0; step < 5; step++) await source.change();
    await source.change(JobPhase.PAUSED);
    expect((await second).value).toMatchObject({ revision: 7, status: { phase: JobPhase.PAUSED, step: 7 } });
    // The statuses held back were never built.
    expect(source.builds).toBe(2);
    await source.change(JobPhase.FAILED);
    expect((await watch.next()).value).toMatchObject({ revision: 8, status: { phase: JobPhase.FAILED } });
    expect((await watch.next()).done).toBe(true);
  });

  it("sends the newest status of the same phase once the interval has passed", async () => {
    const source = new Source();
    await source.change();
    const watch = watchStatus(source, { signal: new AbortController().signal, samePhaseIntervalMs: 30 });
    const started = performance.now();
    expect((await watch.next()).value).toMatchObject({ revision: 1 });
    const second = watch.next();
    for (let step = 0; step < 3; step++) await source.change();
    expect((await second).value).toMatchObject({ revision: 4, status: { phase: JobPhase.RUNNING } });
    expect(performance.now() - started).toBeGreaterThanOrEqual(29);
  });

  it("ends a held watch when it is aborted", async () => {
    const source = new Source();
    await source.change();
    const controller = new AbortController();
    const watch = watchStatus(source, { signal: controller.signal, samePhaseIntervalMs: 3_600_000 });
    await watch.next();
    const second = watch.next();
    await source.change();
    controller.abort();
    expect((await second).done).toBe(true);
  });
});
