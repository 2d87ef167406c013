/**
 * The trainfleet image end to end: one image runs every role, each in a container of its own
 * on one Docker network, addressed by network aliases, as a user would run them (all config
 * through TRAINFLEET_* environment variables, the JobSpec inline in TRAINFLEET_SPEC; plaintext
 * on purpose, TRAINFLEET_INSECURE=true, as a member without TLS files is refused). Mid-job
 * one worker container is killed (SIGKILL from the engine) and a new worker container
 * starts; the job goes on from where it was and succeeds with every step done, each
 * container exits 0 (the killed one aside), and every process runs as uid/gid 65532.
 *
 * The image is scripts/build-test-image.sh's (the Dockerfile's layout from this checkout's
 * build; nothing can be pulled here), built or found up to date first; TRAINFLEET_TEST_IMAGE
 * names another image to test instead (one built from the Dockerfile). It needs a
 * Docker engine: without one the test fails and says to run scripts/start-dockerd.sh as root.
 */

import type { JobStatus } from "@trainfleet/proto";
import { JobPhase, jobStatusFromJson, WorkerState } from "@trainfleet/proto";
import {
  buildTestImage,
  ContainerLog,
  disableRyuk,
  exitCode,
  killContainer,
  mainProcessIds,
  requireDockerEngine,
} from "@trainfleet/testing/fixtures/docker";
import type { StartedNetwork, StartedTestContainer } from "testcontainers";
import { GenericContainer, Network, Wait } from "testcontainers";
import { afterAll, describe, expect, it } from "vitest";

disableRyuk();
// TRAINFLEET_TEST_IMAGE runs the test on an image built elsewhere (the Dockerfile's), as it is.
const givenImage = process.env.TRAINFLEET_TEST_IMAGE;
const image = givenImage || "trainfleet:test";
const jobId = "containers-e2e";
// Two workers of batch 64: 469 steps of one epoch (a few seconds of training). min_workers 2:
// without its second worker the job pauses, so the killed worker's replacement always joins
// mid-job, however slow the machine.
const spec = {
  jobId,
  model: { mlp: { hiddenUnits: [32] } },
  training: { epochs: 1, batchSizePerWorker: 64, evalSamples: 2000, seed: 7 },
  workers: { replicas: 2, minWorkers: 2 },
  parameterServers: { shards: 2 },
};
const totalSteps = Math.ceil(60_000 / 128);
const coordinatorAddress = "coordinator:7070";
const byHost = (s: JobStatus) => [...s.workers].sort((a, b) => a.host.localeCompare(b.host));

let network: StartedNetwork | undefined;
const containers: StartedTestContainer[] = [];
const logs = new Map<string, ContainerLog>();

afterAll(async () => {
  // Without Ryuk nothing else removes them; scripts/start-dockerd.sh sweeps up after a crash.
  await Promise.allSettled(containers.map((c) => c.stop({ timeout: 0 })));
  await network?.stop().catch(() => undefined);
}, 60_000);

/** Starts one role in a container named and aliased `name`, in plaintext on purpose, its log kept in `logs`. */
async function start(
  name: string,
  role: string,
  env: Record<string, string>,
  configure: (c: GenericContainer) => GenericContainer,
): Promise<StartedTestContainer> {
  const log = new ContainerLog(name);
  logs.set(name, log);
  const definition = new GenericContainer(image)
    .withNetwork(network!)
    .withNetworkAliases(name)
    .withCommand([role])
    .withEnvironment({ TRAINFLEET_HOST: name, TRAINFLEET_INSECURE: "true", ...env })
    .withLogConsumer(log.consume)
    .withStartupTimeout(60_000);
  let container: StartedTestContainer;
  try {
    container = await configure(definition).start();
  } catch (error) {
    throw new Error(
      `the ${name} container did not get ready: ${error instanceof Error ? error.message : String(error)}\nits log:\n${log.tail()}`,
      { cause: error },
    );
  }
  containers.push(container);
  return container;
}

/** Like Promise.all, but settles every start first, so that afterAll sees every container that started. */
async function all<T extends unknown[]>(starts: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const results = await Promise.allSettled(starts);
  const failed = results.find((r) => r.status === "rejected");
  if (failed !== undefined) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as T;
}

const registered = Wait.forLogMessage(/"msg":"registered with the coordinator"/);

const worker = (name: string) =>
  start(name, "worker", { TRAINFLEET_COORDINATOR: coordinatorAddress, TRAINFLEET_BACKEND: "wasm" }, (c) => c.withWaitStrategy(registered));

/** Polls the coordinator's status API until `done` holds; every status read is kept in `seen`. */
async function pollUntil(
  url: string,
  what: string,
  seen: JobStatus[],
  done: (s: JobStatus) => boolean,
  timeoutMs = 60_000,
): Promise<JobStatus> {
  const deadline = Date.now() + timeoutMs;
  let lastError = "";
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url);
      if (response.ok) {
        const status = jobStatusFromJson((await response.json()) as never);
        seen.push(status);
        if (done(status)) return status;
        if (status.phase === JobPhase.FAILED)
          throw new Error(`the job failed while waiting for ${what}: ${status.reason}: ${status.message}`);
      } else lastError = `HTTP ${response.status}`;
    } catch (error) {
      if (error instanceof Error && error.message.startsWith("the job failed")) throw error;
      lastError = String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const last = seen.at(-1);
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}; last status: ${last ? `${JobPhase[last.phase]} step ${last.step}/${last.totalSteps}: ${last.message}` : `none (${lastError})`}\n` +
      `coordinator log:\n${logs.get("coordinator")?.tail() ?? ""}`,
  );
}

describe("the trainfleet image: coordinator, 2 parameter-server shards and 2 workers as containers on one Docker network", () => {
  it("finishes the job when a worker container is killed mid-job and a new one joins; every container runs as uid 65532", async () => {
    // In the test, not in beforeAll: without an engine this test fails (saying how to start one) rather than being skipped.
    await requireDockerEngine();
    if (!givenImage) await buildTestImage(image);
    network = await new Network().start();

    const coordinator = await start(
      "coordinator",
      "coordinator",
      {
        TRAINFLEET_LISTEN: "0.0.0.0:7070",
        TRAINFLEET_HTTP_LISTEN: "0.0.0.0:7080",
        TRAINFLEET_SPEC: JSON.stringify(spec),
        TRAINFLEET_LEASE_MS: "3000",
        // Serve the final status a little longer than the polling interval, then exit on its own.
        TRAINFLEET_LINGER_MS: "2000",
      },
      (c) => c.withExposedPorts(7080).withWaitStrategy(Wait.forHttp("/readyz", 7080).forStatusCode(200)),
    );
    const statusUrl = `http://${coordinator.getHost()}:${coordinator.getMappedPort(7080)}/v1/jobs/${jobId}`;
    // The members start together (they register with the coordinator in any order). Shards
    // listen on their alias: workers dial the address a shard registers.
    const shard = (i: number) =>
      start(
        `ps-${i}`,
        "ps",
        { TRAINFLEET_COORDINATOR: coordinatorAddress, TRAINFLEET_SHARD_INDEX: String(i), TRAINFLEET_LISTEN: `ps-${i}:7100` },
        (c) => c.withWaitStrategy(registered),
      );
    const [ps0, ps1, survivor, victim] = await all([shard(0), shard(1), worker("worker-a"), worker("worker-b")]);
    const shards = [ps0, ps1];
    const seen: JobStatus[] = [];
    const training = await pollUntil(statusUrl, "50 steps", seen, (s) => s.phase === JobPhase.RUNNING && s.step >= 50);
    expect(byHost(training).map((w) => [w.host, w.backend])).toEqual([
      ["worker-a", "wasm"],
      ["worker-b", "wasm"],
    ]);
    const victimId = training.workers.find((w) => w.host === "worker-b")!.workerId;

    await killContainer(victim);
    expect(await exitCode(victim)).toBe(137); // 128 + SIGKILL
    const paused = await pollUntil(statusUrl, "the killed worker to be lost", seen, (s) =>
      s.workers.some((w) => w.workerId === victimId && w.state === WorkerState.LOST),
    );
    expect(paused.step).toBeLessThan(totalSteps);

    // Every role's main process (PID 1 of its container) runs as the image's user.
    for (const container of [coordinator, ...shards, survivor]) {
      expect(await mainProcessIds(container), container.getName()).toEqual({
        uid: [65532, 65532, 65532, 65532],
        gid: [65532, 65532, 65532, 65532],
      });
    }

    const joiner = await worker("worker-c");
    expect(await mainProcessIds(joiner)).toEqual({ uid: [65532, 65532, 65532, 65532], gid: [65532, 65532, 65532, 65532] });
    const rejoined = await pollUntil(
      statusUrl,
      "the new worker to train",
      seen,
      (s) => s.phase === JobPhase.RUNNING && s.workers.some((w) => w.host === "worker-c" && w.state === WorkerState.TRAINING),
    );
    const joinerId = rejoined.workers.find((w) => w.host === "worker-c")!.workerId;
    expect(rejoined.generation).toBeGreaterThan(training.generation);

    const final = await pollUntil(statusUrl, "the job to succeed", seen, (s) => s.phase === JobPhase.SUCCEEDED);
    expect(final).toMatchObject({ jobId, phase: JobPhase.SUCCEEDED, step: totalSteps, totalSteps });
    expect(final.testAccuracy).toBeGreaterThan(0.7);
    // Membership history: the killed worker stays listed as lost, the one that joined stopped with the rest.
    expect(byHost(final).map((w) => [w.host, w.workerId, w.state])).toEqual([
      ["worker-a", expect.any(String), WorkerState.STOPPED],
      ["worker-b", victimId, WorkerState.LOST],
      ["worker-c", joinerId, WorkerState.STOPPED],
    ]);
    // Between the loss and the join the job paused: one worker is below min_workers.
    expect(seen.some((s) => s.phase === JobPhase.PAUSED)).toBe(true);

    // Each process exits on its own once the job is done; the coordinator after its linger.
    for (const container of [coordinator, ...shards, survivor, joiner]) {
      expect(await exitCode(container), container.getName()).toBe(0);
    }
    const coordinatorLog = logs.get("coordinator")!;
    await coordinatorLog.ended;
    // Plaintext because TRAINFLEET_INSECURE asked for it, and said so.
    expect(coordinatorLog.find((l) => l.level === 40 && /^--insecure: plaintext/.test(l.msg ?? ""))).toBeDefined();
    expect(
      coordinatorLog.find((l) => l.memberId === victimId && /was lost/.test(l.msg ?? "")),
      coordinatorLog.tail(),
    ).toBeDefined();
    expect(coordinatorLog.find((l) => l.msg === "member registered" && l.memberId === joinerId && l.host === "worker-c")).toBeDefined();
    expect(coordinatorLog.find((l) => l.msg === "generation begins" && String(l.why).includes(`worker ${joinerId} joined`))).toBeDefined();
  }, 240_000);
});
