/**
 * A partition, not a crash. Three network namespaces: a switch with a bridge, host A (the
 * coordinator, both parameter-server shards and one worker) and host B (the other worker),
 * each on the bridge by a veth pair. Mid-training B's bridge-side port goes down: B's
 * worker lives on but nothing it sends arrives, and nothing reaches it. The coordinator
 * must mark it lost within its lease and go on without it; once the port is up again the
 * worker must register anew, take a rank in a later generation, and the job must finish.
 * B is cut off twice: briefly, and then for longer than gRPC's keepalive (the worker's
 * connection to the coordinator is given up while the partition lasts).
 *
 * The status is read by `trainfleet status --watch --json` running inside A, so that no
 * address is added to the root namespace. Without network namespaces (not root, no
 * CAP_NET_ADMIN, no iproute2) this test fails, saying so: it never passes by skipping.
 */
import type { JsonValue } from "@bufbuild/protobuf";
import type { JobStatus } from "@trainfleet/proto";
import { JobPhase, jobStatusFromJson, WorkerState } from "@trainfleet/proto";
import { SwitchedNetwork } from "@trainfleet/testing/fixtures/network-namespaces";
import type { LogLine } from "@trainfleet/testing/fleet/fleet-process";
import { FleetProcess, stopAll } from "@trainfleet/testing/fleet/fleet-process";
import { afterAll, describe, expect, it } from "vitest";

const leaseMs = 2_000;
/** A lease runs out at most leaseMs after the last heartbeat, and leases are checked every leaseMs/4: the slack covers that and a loaded machine. */
const detectionBoundMs = leaseMs + 1_500;
/** More steps than any machine runs during the test: the test ends the job itself (SIGTERM), so a fast machine cannot finish it before the partitions are done. */
const maxSteps = 1_000_000;
const jobFlags = [
  "--job-id",
  "partition",
  "--workers",
  "2",
  "--shards",
  "2",
  "--hidden",
  "16",
  "--batch-size",
  "16",
  "--max-steps",
  String(maxSteps),
  "--eval-samples",
  "200",
  "--seed",
  "5",
];

const processes: FleetProcess[] = [];
let network: SwitchedNetwork | undefined;
afterAll(async () => {
  try {
    await stopAll(processes);
  } finally {
    await network?.destroy();
  }
});

function start(name: string, args: string[], wrapper: string[]): FleetProcess {
  const process = new FleetProcess(name, args, wrapper);
  processes.push(process);
  return process;
}

/** Rejects with `what` and the processes' last words if `promise` takes longer than `ms`: a bound on a wait, never a pause. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no ${what} within ${ms} ms\n${processes.map((p) => `--- ${p.name}\n${p.output(8)}`).join("\n")}`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

interface Partition {
  kind: string;
  /** B's worker's member id after it registered again. */
  member: string;
  detectionMs: number;
  cutForMs: number;
  rejoinMs: number;
  /** What the worker said when it left its session. */
  evictedBy: string | undefined;
  generation: number;
  rank: number;
  /** The job's step once the worker was seen training again. */
  step: number;
}

const parsed = new WeakMap<LogLine, JobStatus>();
/** The status on a line of `trainfleet status --watch --json` (one JobStatus in proto JSON per change). */
function statusOf(line: LogLine): JobStatus {
  let status = parsed.get(line);
  if (status === undefined) {
    status = jobStatusFromJson(line as unknown as JsonValue);
    parsed.set(line, status);
  }
  return status;
}

describe("a worker cut off from the others by a network partition", () => {
  it("is marked lost within its lease while the job goes on, and rejoins in a later generation when the link is back, twice", async () => {
    // Fails (not skips) where namespaces cannot be made: create() says why.
    network = await SwitchedNetwork.create(["a", "b"]);
    const a = network.host("a");
    const inA = network.exec("a");
    const inB = network.exec("b");

    const coordinator = start(
      "coordinator",
      [
        "coordinator",
        "--insecure",
        "--listen",
        `${a.address}:0`,
        "--http-listen",
        `${a.address}:0`,
        "--linger-ms",
        "60000",
        "--lease-ms",
        String(leaseMs),
        ...jobFlags,
      ],
      inA,
    );
    const address = (await coordinator.log("coordinator listening")).address as string;
    const jobUrl = (await coordinator.log("status API listening")).url as string;
    expect(address).toMatch(new RegExp(`^${a.address.replaceAll(".", "\\.")}:\\d+$`));
    const watch = start("status", ["status", jobUrl, "--watch", "--json"], inA);
    const status = async (what: string, predicate: (s: JobStatus) => boolean, from = 0) => {
      const line = await watch
        .waitFor(what, (l) => "phase" in l && predicate(statusOf(l)), from)
        .catch((error: unknown) => {
          const last = watch.lines.findLast((l) => "phase" in l);
          const ended =
            last === undefined
              ? ""
              : ` (the job ended ${JobPhase[statusOf(last).phase]} at step ${statusOf(last).step}: ${statusOf(last).message}; if it finished before the partitions were done, raise maxSteps)`;
          throw new Error(`${(error as Error).message}${ended}`, { cause: error });
        });
      return { index: watch.lines.indexOf(line), status: statusOf(line) };
    };
    for (const shard of [0, 1])
      start(
        `ps-${shard}`,
        ["ps", "--insecure", "--coordinator", address, "--shard-index", String(shard), "--listen", `${a.address}:0`],
        inA,
      );
    const workerA = start("worker-a", ["worker", "--insecure", "--coordinator", address, "--backend", "cpu", "--host", "a"], inA);
    const workerB = start("worker-b", ["worker", "--insecure", "--coordinator", address, "--backend", "cpu", "--host", "b"], inB);

    const training = await within(
      60_000,
      "training on both workers",
      status("training on both workers", (s) => s.phase === JobPhase.RUNNING && s.step >= 100),
    );
    const idA = (await workerA.log("registered with the coordinator")).memberId as string;
    const idB = (await workerB.log("registered with the coordinator")).memberId as string;
    const stateOf = (s: JobStatus, id: string) => s.workers.find((w) => w.workerId === id);
    expect(training.status.generation).toBe(1);
    expect([stateOf(training.status, idA)?.state, stateOf(training.status, idB)?.state]).toEqual([
      WorkerState.TRAINING,
      WorkerState.TRAINING,
    ]);

    // Two partitions of the same worker. The first is healed as soon as the job is seen to go on
    // without it: the worker learns of its eviction when the link is back (the Stop that was
    // waiting, or a heartbeat answered NOT_FOUND). The second is held until the worker's gRPC
    // keepalive gives up on the coordinator (about 15 s), so that it must register again
    // through a connection that does not exist yet.
    const partitions: Partition[] = [];
    let memberB = idB;
    let from = training.index;
    for (const kind of ["short", "past the keepalive"] as const) {
      const what = `the ${kind} partition`;
      const previous = statusOf(watch.lines[from]!);

      // Detection is timed from just before the port goes down to the coordinator's own log line saying so.
      const cutAt = Date.now();
      const linesAtCut = { coordinator: coordinator.lines.length, workerB: workerB.lines.length };
      await network.cut("b");
      const lostLine = await within(
        detectionBoundMs + 10_000,
        `loss of B's worker in the coordinator's log (${what})`,
        coordinator.waitFor("marking B's worker lost", (l) => l.memberId === memberB && l.msg.includes("was lost"), linesAtCut.coordinator),
      );
      const detectionMs = (lostLine.time as number) - cutAt;
      expect(lostLine.cause, `${what} shows as a missed lease, not a closed stream`).toBe("lease_expired");
      expect(detectionMs, `${what}: B's worker was marked lost ${detectionMs} ms after the cut; its lease is ${leaseMs} ms`).toBeLessThan(
        detectionBoundMs,
      );

      // The job goes on without B: a new generation of one worker, and steps advance while B is still cut off.
      const lost = await status(`B's worker LOST in the status (${what})`, (s) => stateOf(s, memberB)?.state === WorkerState.LOST, from);
      const without = await within(
        30_000,
        `progress without B (${what})`,
        status(
          "a generation without B that advances",
          (s) => s.generation > previous.generation && s.reason === "Training" && s.step >= lost.status.step + 50,
          lost.index,
        ),
      );
      expect(without.status.message).toMatch(/on 1 worker \(generation \d+\)/);
      expect(stateOf(without.status, idA)).toMatchObject({ state: WorkerState.TRAINING, rank: 0 });
      expect(stateOf(without.status, memberB)?.state).toBe(WorkerState.LOST);
      if (kind === "past the keepalive") {
        await within(
          60_000,
          "B's worker giving up its connection to the coordinator",
          workerB.waitFor(
            "B's worker giving up its connection",
            (l) => l.msg.startsWith("the connection to the coordinator broke"),
            linesAtCut.workerB,
          ),
        );
      }
      expect(workerB.running, `B's worker died during ${what}:\n${workerB.output()}`).toBe(true);
      const cutForMs = Date.now() - cutAt;

      // The link comes back: B's worker registers as a new member and trains again.
      const linesAtRestore = workerB.lines.length;
      const restoredAt = Date.now();
      await network.restore("b");
      const again = await within(
        30_000,
        `registration of B's worker after ${what}`,
        workerB.waitFor("B's worker registering again", (l) => l.msg === "registered with the coordinator", linesAtRestore),
      );
      const rejoinMs = (again.time as number) - restoredAt;
      const evictedBy = workerB.lines.slice(linesAtCut.workerB).find((l) => l.msg.endsWith("registering again"))?.msg;
      const member = again.memberId as string;
      expect(member, "a member marked lost comes back as a new member").not.toBe(memberB);
      const rejoined = await within(
        30_000,
        `a generation with B's worker in it again (${what})`,
        status(
          "B's worker training with a rank again",
          (s) => s.generation > without.status.generation && s.reason === "Training" && stateOf(s, member)?.state === WorkerState.TRAINING,
          without.index,
        ),
      );
      expect(rejoined.status.message).toMatch(/on 2 workers \(generation \d+\)/);
      const rank = stateOf(rejoined.status, member)!.rank;
      expect([stateOf(rejoined.status, idA)!.rank, rank].sort()).toEqual([0, 1]);
      // It really trains: its own progress reports advance in that generation.
      const trained = await within(
        30_000,
        `steps by B's worker after ${what}`,
        status(
          "steps reported by B's worker after the rejoin",
          (s) => (stateOf(s, member)?.lastStep ?? 0) >= rejoined.status.step + 20,
          rejoined.index,
        ),
      );
      expect(trained.status.generation, "B's worker reported steps of the generation it rejoined in").toBe(rejoined.status.generation);
      partitions.push({
        kind,
        member,
        detectionMs,
        cutForMs,
        rejoinMs,
        evictedBy,
        generation: rejoined.status.generation,
        rank,
        step: trained.status.step,
      });
      memberB = member;
      from = trained.index;
    }
    expect(workerB.lines.filter((l) => l.msg === "assigned a rank").map((l) => [l.workerId, l.generation, l.worldSize])).toEqual([
      [idB, 1, 2],
      ...partitions.map((p) => [p.member, p.generation, 2]),
    ]);

    // The end: the test stops the job (SIGTERM to the coordinator, which has no checkpoint
    // folder, so it just ends it); every member is told to stop, and no process restarted.
    coordinator.kill("SIGTERM");
    await within(60_000, "end of the job", watch.exited);
    const final = statusOf(watch.lines.filter((l) => "phase" in l).at(-1)!);
    expect(final).toMatchObject({ phase: JobPhase.FAILED, reason: "Terminated" });
    expect(Object.fromEntries(final.workers.map((w) => [w.workerId, w.state]))).toEqual({
      [idA]: WorkerState.STOPPED,
      [idB]: WorkerState.LOST,
      [partitions[0]!.member]: WorkerState.LOST,
      [partitions[1]!.member]: WorkerState.STOPPED,
    });
    for (const worker of [workerA, workerB]) expect(await worker.exited, worker.output()).toEqual({ code: 0, signal: null });
    expect(workerA.lines.filter((l) => l.msg === "registered with the coordinator")).toHaveLength(1);
    expect(workerB.lines.filter((l) => l.msg === "registered with the coordinator")).toHaveLength(3);

    for (const p of partitions) {
      console.log(
        `${p.kind} partition: B's worker marked lost ${p.detectionMs} ms after the cut (lease ${leaseMs} ms); cut for ${p.cutForMs} ms; ` +
          `registered again ${p.rejoinMs} ms after the link came back ("${p.evictedBy}"), trained in generation ${p.generation} as rank ${p.rank} (step ${p.step} of ${maxSteps})`,
      );
    }
  }, 300_000);
});
