/**
 * `trainfleet run` heals its local fleet as a pod's restart policy would: the coordinator
 * and then a shard, each killed with SIGKILL mid-training (by pid, from its log), are
 * started again; the job resumes from its checkpoint each time and the run succeeds.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JobPhase } from "@trainfleet/proto";
import { abortableDelay } from "@trainfleet/runtime";
import { cliMain, readToken } from "@trainfleet/testing/fleet/run-fleet";
import { StatusEvents } from "@trainfleet/testing/fleet/status-events";
import { afterAll, describe, expect, it } from "vitest";

const streams: StatusEvents[] = [];
afterAll(() => {
  for (const stream of streams) stream.close();
});

/** The pid its first log line names, of a process of the job folder. */
function pidOf(folder: string, name: string): number {
  const first = readFileSync(join(folder, `${name}.log`), "utf8").split("\n")[0]!;
  return (JSON.parse(first) as { pid: number }).pid;
}

/** The status stream at `url`, opened with the job's read token as soon as a (restarted) coordinator serves it. */
async function openWhenUp(url: string, token: string): Promise<StatusEvents> {
  for (let attempt = 0; ; attempt++) {
    try {
      const stream = await StatusEvents.open(url, { token });
      streams.push(stream);
      return stream;
    } catch (error) {
      // A bound on how long a restart may take, not a stand-in for a signal: each try is a real connection attempt.
      if (attempt > 300) throw error;
      await abortableDelay(100, AbortSignal.timeout(1_000));
    }
  }
}

describe("trainfleet run with a coordinator and a shard killed", () => {
  it("starts each again, resumes the job from its checkpoint, and succeeds", async () => {
    const jobsDir = mkdtempSync(join(tmpdir(), "trainfleet-supervision-"));
    const flags = [
      "--workers",
      "2",
      "--shards",
      "2",
      "--hidden",
      "16",
      "--batch-size",
      "16",
      "--max-steps",
      "600",
      "--eval-samples",
      "200",
      "--checkpoint-every",
      "100",
      "--backend",
      "cpu",
      "--ledger-audit",
    ];
    const run = spawn(process.execPath, [cliMain, "run", "--jobs-dir", jobsDir, ...flags], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    let statusUrl: (url: string) => void;
    const status = new Promise<string>((resolve) => (statusUrl = resolve));
    run.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const match = /^status: (http:\/\/\S+)/m.exec(output);
      if (match !== null) statusUrl(match[1]!);
    });
    run.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = once(run, "exit");
    const watchUrl = `${await status}/watch`;
    const folder = join(jobsDir, readdirSync(jobsDir)[0]!);

    const token = readToken(folder);
    let events = await openWhenUp(watchUrl, token);
    await events.waitFor("the checkpoint of step 200", (s) => s.lastCheckpointVersion === 200 && s.step >= 250);
    process.kill(pidOf(folder, "coordinator"), "SIGKILL");
    await events.ended;
    events = await openWhenUp(watchUrl, token);
    await events.waitFor("the restarted coordinator's training", (s) => s.phase === JobPhase.RUNNING && s.step > 200);

    await events.waitFor("the checkpoint of step 400", (s) => s.lastCheckpointVersion === 400 && s.step >= 450);
    process.kill(pidOf(folder, "ps-1"), "SIGKILL");
    await events.waitFor(
      "training after the shard's restart",
      (s) => s.phase === JobPhase.RUNNING && s.step > 400 && s.reason === "Training" && s.generation >= 3,
    );

    const [code] = (await exited) as [number | null];
    expect(code, output).toBe(0);
    expect(output).toContain("coordinator was killed by SIGKILL; starting it again (restart 1 of 3)");
    expect(output).toContain("ps-1 was killed by SIGKILL; starting it again (restart 1 of 3)");
    expect(output).toMatch(/SUCCEEDED: test accuracy \d+\.\d+% \(test loss \d+\.\d+\) after 600 steps/);
    const ledger = readFileSync(join(folder, "ledger.jsonl"), "utf8")
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => (JSON.parse(line) as { step: number }).step);
    expect(ledger).toEqual(Array.from({ length: 600 }, (_, i) => i));
  }, 240_000);
});
