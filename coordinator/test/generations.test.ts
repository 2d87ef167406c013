/**
 * Elastic membership in the coordinator, driven in-process by fake members that speak its
 * API (register, assignments, ReportGeneration, ReportProgress): each join or loss makes a
 * new generation that goes on from the lowest version the shards hold, with the step in
 * flight handed out again on the same samples over the new ranks; standbys beyond
 * max_workers; a pause below min_workers with a deadline; and, over a whole job with
 * losses and joins, every sample of every epoch used exactly once (the ledger audit).
 */
import { create } from "@bufbuild/protobuf";
import {
  Code,
  JobPhase,
  JobSpecSchema,
  MemberRole,
  ParameterServerStatsSchema,
  type TrainfleetError,
  WorkerState,
} from "@trainfleet/proto";
import { silentLogger } from "@trainfleet/runtime";
import type { ResolvedJobSpec } from "@trainfleet/spec";
import { resolveJobSpec } from "@trainfleet/spec";
import { describe, expect, it } from "vitest";
import { Coordinator } from "../src/job/coordinator.js";
import type { CoordinatorOptions } from "../src/job/coordinator-options.js";
import type { AssignmentInit } from "../src/membership/members.js";
import type { LedgerRecord } from "../src/steps/ledger-audit.js";
import { LedgerAudit } from "../src/steps/ledger-audit.js";

const trainSamples = 60_000;

function jobSpec(
  workers: { replicas: number; minWorkers?: number; maxWorkers?: number; pauseTimeoutSeconds?: number },
  training: object = {},
): ResolvedJobSpec {
  return resolveJobSpec(
    create(JobSpecSchema, {
      jobId: "elastic",
      workers,
      parameterServers: { shards: 2 },
      training: { batchSizePerWorker: 1000, epochs: 2, ...training },
    }),
  );
}

type Kind = NonNullable<AssignmentInit["kind"]>;
type Of<C extends Kind["case"]> = Extract<Kind, { case: C }>["value"];

/** A job's coordinator and fake members that read what it sends them. */
class Harness {
  readonly coordinator: Coordinator;
  readonly audit: LedgerRecord[] = [];
  now = 1_000_000;
  /** What each shard holds, as it would report it. */
  readonly shardVersions = [0, 0];
  /** The newest generation each shard was assigned. */
  readonly #shardGeneration = new Map<string, number>();

  constructor(spec: ResolvedJobSpec, options: Pick<CoordinatorOptions, "onTrained"> = {}) {
    const audit = new LedgerAudit(
      (line) => this.audit.push(JSON.parse(line) as LedgerRecord),
      (fromStep) => this.audit.splice(0, this.audit.length, ...this.audit.filter((record) => record.step < fromStep)),
    );
    this.coordinator = new Coordinator({ spec, leaseMs: 1_000, logger: silentLogger, now: () => this.now, ledgerAudit: audit, ...options });
    for (const shardIndex of [0, 1])
      this.coordinator.register({ role: MemberRole.PARAMETER_SERVER, address: `127.0.0.1:${shardIndex + 1}`, shardIndex } as never);
  }

  worker(): string {
    return this.coordinator.register({ role: MemberRole.WORKER, host: "h", backend: "cpu" } as never).memberId;
  }

  /** Everything sent to a member since the last look. */
  async take(memberId: string): Promise<Kind[]> {
    const aborted = AbortSignal.abort();
    const items: Kind[] = [];
    for await (const item of this.coordinator.assignments(memberId, aborted)) items.push(item.kind as Kind);
    for (const kind of items) if (kind.case === "shard") this.#shardGeneration.set(memberId, kind.value.generation!);
    return items;
  }

  async of<C extends Kind["case"]>(memberId: string, kind: C): Promise<Array<Of<C>>> {
    return (await this.take(memberId)).filter((k): k is Extract<Kind, { case: C }> => k.case === kind).map((k) => k.value as Of<C>);
  }

  /** The shards answer the newest generation assignment with their versions; returns what they are told to open. */
  async shardsReport(): Promise<Array<Of<"openGeneration">>> {
    for (const index of [0, 1]) {
      await this.take(`ps-${index}`);
      const generation = this.#shardGeneration.get(`ps-${index}`)!;
      this.coordinator.reportGeneration({ memberId: `ps-${index}`, generation, version: this.shardVersions[index]!, error: "" } as never);
    }
    return [...(await this.of("ps-0", "openGeneration")), ...(await this.of("ps-1", "openGeneration"))];
  }

  report(memberId: string, step: Of<"step">, generation: number): void {
    this.coordinator.reportProgress({
      memberId,
      generation,
      step: step.step!,
      loss: 1,
      samples: step.sampleIndices!.length,
      computeMs: 1,
      communicateMs: 1,
    } as never);
  }
}

/** The samples of one step, over all its ranks, sorted. */
function samplesOf(steps: ReadonlyArray<Of<"step">>): number[] {
  return steps.flatMap((s) => [...s.sampleIndices!]).sort((a, b) => a - b);
}

describe("generations", () => {
  it("starts generation 1 only once every shard has reported its version, then gives ranks and steps", async () => {
    const h = new Harness(jobSpec({ replicas: 3 }));
    const workers = [h.worker(), h.worker(), h.worker()];
    expect(h.coordinator.status()).toMatchObject({ phase: JobPhase.PENDING, reason: "Starting", generation: 1 });
    expect(await h.take(workers[0]!)).toEqual([]);
    const shard = (await h.of("ps-1", "shard"))[0]!;
    expect([shard.generation, shard.worldSize]).toEqual([1, 3]);
    h.coordinator.reportGeneration({ memberId: "ps-1", generation: 1, version: 0, error: "" } as never);
    expect(h.coordinator.status().phase).toBe(JobPhase.PENDING);
    h.coordinator.reportGeneration({ memberId: "ps-0", generation: 1, version: 0, error: "" } as never);
    expect(await h.of("ps-0", "openGeneration")).toEqual([{ generation: 1, version: 0 }]);
    const ranks = await Promise.all(
      workers.map(async (w) =>
        (await h.take(w)).map((k) =>
          k.case === "worker" ? `rank ${k.value.rank}/${k.value.worldSize}` : `${k.case} ${(k.value as Of<"step">).step}`,
        ),
      ),
    );
    expect(ranks).toEqual([0, 1, 2].map((r) => [`rank ${r}/3`, "step 0", "step 1"]));
    expect(h.coordinator.status()).toMatchObject({ phase: JobPhase.RUNNING, reason: "Training", generation: 1, totalSteps: 40 });
  });

  it("on a worker's loss, goes on from the lowest version the shards hold, with the abandoned step's samples split over the new ranks", async () => {
    const h = new Harness(jobSpec({ replicas: 3 }));
    const workers = [h.worker(), h.worker(), h.worker()];
    await h.shardsReport();
    const firstSteps = await Promise.all(workers.map((w) => h.of(w, "step")));
    // Step 0 completes; step 1 reaches shard 0 from every rank, and shard 1 from two (worker-1 dies between its pushes).
    firstSteps.forEach((steps, rank) => h.report(workers[rank]!, steps[0]!, 1));
    expect(h.coordinator.status().step).toBe(1);
    h.shardVersions.splice(0, 2, 2, 1);
    await Promise.all(workers.map((w) => h.take(w)));
    h.coordinator.streamClosed(workers[1]!);
    expect(h.coordinator.status()).toMatchObject({ phase: JobPhase.RUNNING, reason: "Rescaling", generation: 2 });
    expect((await h.of("ps-0", "shard")).map((s) => [s.generation, s.worldSize])).toEqual([[2, 2]]);
    // Shard 0 goes back to version 1: the step is run again by the two workers left.
    expect(await h.shardsReport()).toEqual([
      { generation: 2, version: 1 },
      { generation: 2, version: 1 },
    ]);
    const [survivor0, survivor2] = [await h.take(workers[0]!), await h.take(workers[2]!)];
    expect(survivor0[0]).toMatchObject({ case: "worker", value: { generation: 2, rank: 0, worldSize: 2 } });
    expect(survivor2[0]).toMatchObject({ case: "worker", value: { generation: 2, rank: 1, worldSize: 2 } });
    const rerun = [survivor0, survivor2].map((kinds) => kinds.filter((k) => k.case === "step").map((k) => k.value as Of<"step">));
    expect(rerun.map((steps) => steps.map((s) => [s.generation, s.step]))).toEqual([
      [
        [2, 1],
        [2, 2],
      ],
      [
        [2, 1],
        [2, 2],
      ],
    ]);
    expect(samplesOf([rerun[0]![0]!, rerun[1]![0]!])).toEqual(samplesOf(firstSteps.map((steps) => steps[1]!)));
    expect(rerun[0]![0]!.sampleIndices!.length + rerun[1]![0]!.sampleIndices!.length).toBe(3000);
    const status = h.coordinator.status();
    expect(status).toMatchObject({ generation: 2, step: 1, reason: "Training" });
    expect(status.workers.map((w) => [w.workerId, w.state, w.rank])).toEqual([
      ["worker-0", WorkerState.TRAINING, 0],
      ["worker-1", WorkerState.LOST, 1],
      ["worker-2", WorkerState.TRAINING, 1],
    ]);
    // A report from the abandoned generation is refused, naming the field.
    const stale = (() => {
      try {
        h.report(workers[0]!, firstSteps[0]![1]!, 1);
      } catch (error) {
        return error as TrainfleetError;
      }
    })();
    expect([stale?.code, stale?.field]).toEqual([Code.FAILED_PRECONDITION, "generation"]);
  });

  it("counts a step every shard applied as complete although a rank died before reporting it", async () => {
    const h = new Harness(jobSpec({ replicas: 2 }));
    const workers = [h.worker(), h.worker()];
    await h.shardsReport();
    const steps = await Promise.all(workers.map((w) => h.of(w, "step")));
    h.report(workers[0]!, steps[0]![0]!, 1);
    h.shardVersions.splice(0, 2, 1, 1);
    h.coordinator.streamClosed(workers[1]!);
    await h.shardsReport();
    expect(h.coordinator.status()).toMatchObject({ generation: 2, step: 1 });
    expect((await h.of(workers[0]!, "step")).map((s) => [s.step, s.sampleIndices!.length])).toEqual([
      [1, 2000],
      [2, 2000],
    ]);
    expect(h.audit.map((r) => [r.step, r.generation, r.sampleIndices.length])).toEqual([[0, 1, 2]]);
  });

  it("keeps workers beyond max_workers as standbys, and brings one in when a ranked worker is lost", async () => {
    const h = new Harness(jobSpec({ replicas: 2 }));
    const workers = [h.worker(), h.worker()];
    await h.shardsReport();
    const standby = h.worker();
    expect(h.coordinator.status()).toMatchObject({ generation: 1, reason: "Training" });
    expect(h.coordinator.status().workers.map((w) => w.state)).toEqual([WorkerState.TRAINING, WorkerState.TRAINING, WorkerState.STANDBY]);
    expect(await h.take(standby)).toEqual([]);
    h.coordinator.streamClosed(workers[0]!);
    expect(h.coordinator.status().workers[0]).toMatchObject({
      lastErrorReason: "StreamClosed",
      lastErrorMessage: "worker worker-0 (rank 0) was lost: its assignment stream closed",
    });
    await h.shardsReport();
    expect((await h.take(standby))[0]).toMatchObject({ case: "worker", value: { generation: 2, rank: 1, worldSize: 2 } });
    expect((await h.take(workers[1]!)).filter((k) => k.case === "worker").at(-1)).toMatchObject({ value: { generation: 2, rank: 0 } });
  });

  it("evicts a worker the shards count as a straggler (it may register again), and makes a generation without it", async () => {
    const h = new Harness(jobSpec({ replicas: 3 }));
    const workers = [h.worker(), h.worker(), h.worker()];
    await h.shardsReport();
    const heartbeat = (shard: string, missedDeadlines: number[], generation = 1) =>
      h.coordinator.heartbeat(shard, create(ParameterServerStatsSchema, { version: 0, generation, missedDeadlines }));
    heartbeat("ps-0", [0, 2, 0]);
    heartbeat("ps-1", [0, 1, 0]);
    h.coordinator.checkLeases();
    expect(h.coordinator.status().generation).toBe(1);
    // Counts of an older generation are not this one's.
    heartbeat("ps-1", [0, 0, 5], 0);
    h.coordinator.checkLeases();
    expect(h.coordinator.status().generation).toBe(1);
    heartbeat("ps-1", [0, 3, 0]);
    h.coordinator.checkLeases();
    const status = h.coordinator.status();
    expect(status).toMatchObject({ generation: 2, reason: "Rescaling" });
    expect(status.workers.map((w) => w.state)).toEqual([WorkerState.TRAINING, WorkerState.LOST, WorkerState.TRAINING]);
    // The job's message is the new generation's; the evicted worker keeps why it went.
    expect(status.workers.map((w) => [w.lastErrorReason, w.lastErrorMessage])).toEqual([
      ["", ""],
      [
        "Straggler",
        "worker worker-1 (rank 1) was evicted: it missed 3 step deadlines of 60000 ms in a row (workers.stepDeadlineMs, workers.maxMissedDeadlines 3)",
      ],
      ["", ""],
    ]);
    expect((await h.take(workers[1]!)).at(-1)).toEqual({ case: "stop", value: { reason: "Evicted", rejoin: true } });
    const metrics = h.coordinator.metrics.render();
    expect(metrics).toContain('trainfleet_member_evictions_total{job_id="elastic",role="worker",cause="straggler"} 1');
  });

  it("pauses when a shard is lost, and once a new shard process registers goes back to the start (no checkpoint yet), every shard restoring", async () => {
    const h = new Harness(jobSpec({ replicas: 2 }));
    const workers = [h.worker(), h.worker()];
    await h.shardsReport();
    const steps = await Promise.all(workers.map((w) => h.of(w, "step")));
    workers.forEach((w, rank) => h.report(w, steps[rank]![0]!, 1));
    h.shardVersions.fill(1);
    expect(h.coordinator.status().step).toBe(1);
    h.coordinator.streamClosed("ps-1");
    let status = h.coordinator.status();
    expect(status).toMatchObject({ phase: JobPhase.PAUSED, reason: "ShardLost" });
    expect(status.message).toMatch(
      /^parameter-server shard 1 was lost: its assignment stream closed; waiting for parameter-server shard 1 to register again \(trainfleet ps --shard-index N\), then the job goes back to step 0 \(there is no checkpoint yet\); it fails at /,
    );
    // A worker that joins meanwhile waits with the rest: nothing runs without the shard.
    h.worker();
    expect(h.coordinator.status()).toMatchObject({ phase: JobPhase.PAUSED, reason: "ShardLost", generation: 1 });
    h.coordinator.register({
      role: MemberRole.PARAMETER_SERVER,
      address: "127.0.0.1:9",
      dataAddress: "127.0.0.1:10",
      shardIndex: 1,
    } as never);
    // The shard's checkpoint is read asynchronously (none here): wait for the generation to begin.
    await new Promise((resolve) => setImmediate(resolve));
    const assigned = await Promise.all([h.of("ps-0", "shard"), h.of("ps-1", "shard")]);
    expect(assigned.map((a) => [a.at(-1)!.generation, a.at(-1)!.worldSize, a.at(-1)!.restore?.path, a.at(-1)!.restore?.version])).toEqual([
      [2, 2, "", 0],
      [2, 2, "", 0],
    ]);
    h.shardVersions.fill(0);
    for (const index of [0, 1]) h.coordinator.reportGeneration({ memberId: `ps-${index}`, generation: 2, version: 0, error: "" } as never);
    status = h.coordinator.status();
    expect(status).toMatchObject({ phase: JobPhase.RUNNING, generation: 2, step: 0 });
    expect(status.shards[1]).toMatchObject({ address: "127.0.0.1:9", dataAddress: "127.0.0.1:10" });
    // The step done before the loss is struck from the audit: it is run again.
    expect(h.audit).toEqual([]);
    const again = (await h.of(workers[0]!, "worker")).at(-1)!;
    expect(again.shards![1]).toMatchObject({ address: "127.0.0.1:9" });
  });

  it("takes a shard that registers again for a live index as its predecessor's loss, and goes back with it", async () => {
    const h = new Harness(jobSpec({ replicas: 2 }));
    [h.worker(), h.worker()];
    await h.shardsReport();
    h.coordinator.register({
      role: MemberRole.PARAMETER_SERVER,
      address: "127.0.0.1:7",
      dataAddress: "127.0.0.1:8",
      shardIndex: 0,
    } as never);
    await new Promise((resolve) => setImmediate(resolve));
    // Paused for the lost shard, then at once a generation in which every shard restores.
    expect(h.coordinator.status()).toMatchObject({ phase: JobPhase.PAUSED, reason: "Rescaling", generation: 2 });
    h.shardVersions.fill(0);
    await h.shardsReport();
    const status = h.coordinator.status();
    expect(status).toMatchObject({ phase: JobPhase.RUNNING, reason: "Training", generation: 2 });
    expect(status.parameterServers.map((p) => [p.memberId, p.address])).toEqual([
      ["ps-0", "127.0.0.1:7"],
      ["ps-1", "127.0.0.1:2"],
    ]);
    expect(h.coordinator.metrics.render()).toContain(
      'trainfleet_member_evictions_total{job_id="elastic",role="parameter_server",cause="replaced"} 1',
    );
  });

  it("pauses below min_workers with a deadline, resumes when a worker joins, and fails when a pause outlasts it", async () => {
    const h = new Harness(jobSpec({ replicas: 2, minWorkers: 2, pauseTimeoutSeconds: 30 }));
    const workers = [h.worker(), h.worker()];
    await h.shardsReport();
    h.coordinator.streamClosed(workers[1]!);
    let status = h.coordinator.status();
    expect(status).toMatchObject({ phase: JobPhase.PAUSED, reason: "NotEnoughWorkers", pauseDeadlineUnixMs: BigInt(h.now + 30_000) });
    expect(status.message).toMatch(
      /^worker worker-1 \(rank 1\) was lost: its assignment stream closed: 1 worker, fewer than workers.minWorkers \(2\); waiting for more until /,
    );
    const joined = h.worker();
    expect(h.coordinator.status()).toMatchObject({ phase: JobPhase.PAUSED, reason: "Rescaling", generation: 2 });
    await h.shardsReport();
    status = h.coordinator.status();
    expect(status).toMatchObject({ phase: JobPhase.RUNNING, reason: "Training", generation: 2, pauseDeadlineUnixMs: 0n });
    // Another loss, and no worker comes; the members left keep their leases.
    h.coordinator.streamClosed(workers[0]!);
    expect(h.coordinator.status().phase).toBe(JobPhase.PAUSED);
    const wait = (ms: number) => {
      h.now += ms;
      for (const member of ["ps-0", "ps-1", joined]) h.coordinator.heartbeat(member);
      h.coordinator.checkLeases();
    };
    wait(29_000);
    expect(h.coordinator.status().phase).toBe(JobPhase.PAUSED);
    wait(2_000);
    const final = await h.coordinator.done();
    expect(final).toMatchObject({ phase: JobPhase.FAILED, reason: "PauseTimeout" });
    expect(final.message).toMatch(/^fewer than 2 workers \(workers.minWorkers\) for 30 s \(workers.pauseTimeoutSeconds\): /);
  });

  it("gives every member back the time the coordinator itself was away before judging leases", async () => {
    const h = new Harness(jobSpec({ replicas: 2 }));
    const workers = [h.worker(), h.worker()];
    await h.shardsReport();
    // Five leases without running (a long synchronous task): the members' heartbeats wait unread.
    h.now += 5_000;
    h.coordinator.extendLeases(5_000);
    h.coordinator.checkLeases();
    expect(h.coordinator.status().workers.map((w) => w.state)).toEqual([WorkerState.TRAINING, WorkerState.TRAINING]);
    // A member that then stays silent for a lease is lost as before.
    h.now += 500;
    h.coordinator.heartbeat(workers[0]!);
    for (const shard of ["ps-0", "ps-1"]) h.coordinator.heartbeat(shard);
    h.now += 600;
    h.coordinator.checkLeases();
    expect(h.coordinator.status().workers.map((w) => w.state)).toEqual([WorkerState.TRAINING, WorkerState.LOST]);
  });

  it("finishes a job whose shard is lost while its trained parameters are saved, without pausing it or going back", async () => {
    let saved: () => void = () => {};
    const saving = new Promise<void>((resolve) => (saved = resolve));
    const h = new Harness(jobSpec({ replicas: 1 }, { maxSteps: 2 }), { onTrained: () => saving });
    const worker = h.worker();
    await h.shardsReport();
    for (const step of await h.of(worker, "step")) {
      h.report(worker, step, 1);
      h.shardVersions.fill(step.step! + 1);
    }
    expect(await h.of(worker, "evaluate")).toHaveLength(1);
    h.coordinator.reportEvaluation({ memberId: worker, generation: 1, samples: 10, correct: 9, lossSum: 1 } as never);
    h.coordinator.streamClosed("ps-1");
    expect(h.coordinator.status().phase).toBe(JobPhase.EVALUATING);
    // Its process registers again: the evaluated job does not go back to step 0.
    h.coordinator.register({ role: MemberRole.PARAMETER_SERVER, address: "127.0.0.1:9", shardIndex: 1 } as never);
    await h.take("ps-1");
    expect(h.coordinator.status()).toMatchObject({ phase: JobPhase.EVALUATING, step: 2, generation: 1 });
    saved();
    expect(await h.coordinator.done()).toMatchObject({ phase: JobPhase.SUCCEEDED, step: 2, testAccuracy: 0.9 });
  });

  it("uses every sample of every epoch exactly once across losses and joins, and finishes", async () => {
    const h = new Harness(jobSpec({ replicas: 3, maxWorkers: 4 }));
    let live = [h.worker(), h.worker(), h.worker()];
    let generation = 1;
    await h.shardsReport();
    const inbox = new Map<string, Array<Of<"step">>>();
    const evaluating = new Set<string>();
    /** Reads each live worker's new steps; a new generation's assignment replaces what it had. */
    const read = async () => {
      for (const w of live) {
        for (const kind of await h.take(w)) {
          if (kind.case === "worker") {
            inbox.set(w, []);
            generation = kind.value.generation!;
          } else if (kind.case === "step") inbox.get(w)!.push(kind.value as Of<"step">);
          else if (kind.case === "evaluate") evaluating.add(w);
        }
      }
    };
    await read();
    const events: Record<number, "lose" | "join" | "lose-after-apply"> = {
      5: "lose",
      9: "join",
      17: "lose-after-apply",
      18: "join",
      26: "join",
      31: "lose",
    };
    for (let round = 0; h.coordinator.status().phase === JobPhase.RUNNING && round < 100; round++) {
      const step = h.coordinator.status().step;
      const event = events[round];
      if (event === "join") live.push(h.worker());
      else if (event !== undefined) {
        // Every rank but the last reports; the last is lost. After apply: every shard holds the step.
        const [lost] = live.slice(-1);
        for (const w of live.slice(0, -1)) h.report(w, inbox.get(w)!.find((s) => s.step === step)!, generation);
        h.shardVersions.fill(event === "lose-after-apply" ? step + 1 : step);
        h.coordinator.streamClosed(lost!);
        live = live.slice(0, -1);
      }
      if (event !== undefined) {
        await h.shardsReport();
        await read();
        continue;
      }
      for (const w of live) h.report(w, inbox.get(w)!.find((s) => s.step === step)!, generation);
      h.shardVersions.fill(step + 1);
      await read();
    }
    expect(h.coordinator.status()).toMatchObject({ phase: JobPhase.EVALUATING, step: 40, generation: 7 });
    expect(h.audit.map((r) => r.step)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    for (const epoch of [0, 1]) {
      const used = h.audit.filter((r) => r.epoch === epoch).flatMap((r) => r.sampleIndices.flat());
      expect(used.length).toBe(trainSamples);
      expect(new Set(used).size).toBe(trainSamples);
    }
    // The world sizes the steps ran with, as the audit saw them.
    expect(new Set(h.audit.map((r) => r.sampleIndices.length))).toEqual(new Set([2, 3, 4]));
    expect([...evaluating]).toEqual(live);
    for (const w of live) h.coordinator.reportEvaluation({ memberId: w, generation, samples: 10, correct: 9, lossSum: 1 } as never);
    expect(await h.coordinator.done()).toMatchObject({ phase: JobPhase.SUCCEEDED, testAccuracy: 0.9 });
  });
});
