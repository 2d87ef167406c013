/**
 * Restarts with real processes and real signals (sync mode, float32): mid-epoch the
 * coordinator gets SIGKILL and a new coordinator process is started on the same address;
 * later a parameter-server shard gets SIGKILL and a new shard process is started. The
 * members reconnect by themselves; each time the job goes back to its newest checkpoint
 * (the restarted coordinator finds it through the state its predecessor saved), and it
 * finishes with exactly the parameters of an undisturbed run with the same checkpoints.
 * The ledger audit, with the steps after each checkpoint struck and run again, holds every
 * step once.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JobPhase } from "@trainfleet/proto";
import type { FleetProcess } from "@trainfleet/testing/fleet/fleet-process";
import { processGroup } from "@trainfleet/testing/fleet/fleet-process";
import { runFleet } from "@trainfleet/testing/fleet/run-fleet";
import { StatusEvents } from "@trainfleet/testing/fleet/status-events";
import { afterAll, describe, expect, it } from "vitest";

const steps = 600;
const every = 100;
const jobFlags = [
  ...[
    "--job-id",
    "restarts",
    "--workers",
    "2",
    "--shards",
    "2",
    "--hidden",
    "32",
    "--batch-size",
    "16",
    "--max-steps",
    String(steps),
    "--eval-samples",
    "500",
  ],
  ...["--seed", "9", "--optimizer", "adam", "--lr", "0.001", "--chunk-bytes", "16384", "--checkpoint-every", String(every)],
];

const { start, stop: stopProcesses } = processGroup();
const streams: StatusEvents[] = [];
afterAll(async () => {
  for (const stream of streams) stream.close();
  await stopProcesses();
});

function bits(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

function readParameters(folder: string): Float32Array {
  const bytes = readFileSync(join(folder, "parameters.f32"));
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

describe("a job whose coordinator and then one shard get SIGKILL mid-epoch", () => {
  it("finishes with the parameters of an undisturbed run, every step in the ledger once", async () => {
    const folder = mkdtempSync(join(tmpdir(), "trainfleet-restarts-"));
    const checkpointDir = join(folder, "checkpoints");
    const ledgerPath = join(folder, "ledger.jsonl");
    const coordinatorArgs = (listen: string) => [
      "coordinator",
      "--insecure",
      ...["--listen", listen, "--http-listen", "127.0.0.1:0", "--linger-ms", "60000", "--lease-ms", "3000"],
      ...["--checkpoint-dir", checkpointDir, "--output-dir", folder, "--ledger-audit", ledgerPath, ...jobFlags],
    ];
    const first = start("coordinator", coordinatorArgs("127.0.0.1:0"));
    const address = (await first.log("coordinator listening")).address as string;
    const watch = async (coordinator: FleetProcess) => {
      const events = await StatusEvents.open(`${(await coordinator.log("status API listening")).url as string}/watch`);
      streams.push(events);
      return events;
    };
    let events = await watch(first);
    const shard = (index: number) => start(`ps-${index}`, ["ps", "--insecure", "--coordinator", address, "--shard-index", String(index)]);
    const shards = [shard(0), shard(1)];
    const workers = [0, 1].map((i) => start(`worker-${i}`, ["worker", "--insecure", "--coordinator", address, "--backend", "cpu"]));

    // The coordinator dies after the checkpoint of step 200, mid-way to the next.
    await events.waitFor("the checkpoint of step 200", (s) => s.lastCheckpointVersion === 200 && s.step >= 250);
    first.kill("SIGKILL");
    expect(await first.exited).toEqual({ code: null, signal: "SIGKILL" });
    const second = start("coordinator (restarted)", coordinatorArgs(address));
    const restarted = await second.log(
      'the coordinator restarted while job "restarts" was running; it goes on from its checkpoint of step 200 once its members are back',
    );
    expect(restarted.generation).toBeGreaterThanOrEqual(1);
    events = await watch(second);
    const resumed = await events.waitFor("training again", (s) => s.phase === JobPhase.RUNNING && s.step > 200);
    expect(resumed.status.generation).toBeGreaterThan(restarted.generation as number);
    // Every member found the new coordinator by itself; none restarted.
    for (const member of [...shards, ...workers]) expect(member.running).toBe(true);

    // A shard dies after the checkpoint of step 400; a new process takes its place.
    await events.waitFor("the checkpoint of step 400", (s) => s.lastCheckpointVersion === 400 && s.step >= 450);
    shards[1]!.kill("SIGKILL");
    const paused = await events.waitFor("the pause for the shard", (s) => s.phase === JobPhase.PAUSED && s.reason === "ShardLost");
    expect(paused.status.message).toMatch(
      /^parameter-server shard 1 was lost: its assignment stream closed; waiting for parameter-server shard 1 to register again \(trainfleet ps --shard-index N\), then the job goes back to its checkpoint of step 400; it fails at /,
    );
    shards.push(shard(1));
    await events.waitFor(
      "training after the shard's return",
      (s) => s.phase === JobPhase.RUNNING && s.step > 400 && s.generation > paused.status.generation,
    );

    await events.ended;
    const final = events.events.at(-1)!.status;
    expect(final).toMatchObject({ phase: JobPhase.SUCCEEDED, step: steps });
    for (const member of [shards[0]!, shards[2]!, ...workers]) expect(await member.exited).toEqual({ code: 0, signal: null });

    const ledger = readFileSync(ledgerPath, "utf8")
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => (JSON.parse(line) as { step: number }).step);
    expect(ledger).toEqual(Array.from({ length: steps }, (_, i) => i));

    const undisturbed = await runFleet([...jobFlags, "--backend", "cpu"], 240_000);
    expect(undisturbed.code, undisturbed.output).toBe(0);
    const expected = bits(undisturbed.parameters);
    const actual = bits(readParameters(folder));
    expect(actual.length).toBe(expected.length);
    expect(actual.findIndex((value, i) => value !== expected[i])).toBe(-1);
  }, 480_000);
});
