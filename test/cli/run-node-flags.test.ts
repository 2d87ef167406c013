/**
 * Node's own flags given to `trainfleet run` reach every process of its fleet: one
 * `node --cpu-prof` profiles the coordinator, each shard and each worker, as docs/cli.md says.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cliMain } from "@trainfleet/testing/fleet/run-fleet";
import { expect, it } from "vitest";

it("hands --cpu-prof to the coordinator, both shards and both workers, so each writes a profile", async () => {
  const profiles = mkdtempSync(join(tmpdir(), "trainfleet-profiles-"));
  const jobsDir = mkdtempSync(join(tmpdir(), "trainfleet-test-"));
  const args = [
    "--cpu-prof",
    `--cpu-prof-dir=${profiles}`,
    cliMain,
    "run",
    "--jobs-dir",
    jobsDir,
    "--max-steps",
    "3",
    "--eval-samples",
    "10",
  ];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  for (const stream of [child.stdout, child.stderr]) stream.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const [code] = (await once(child, "exit")) as [number | null];
  expect(code, output).toBe(0);
  // One profile per process: `run` itself, its coordinator, 2 shards and 2 workers.
  expect(readdirSync(profiles).filter((name) => name.endsWith(".cpuprofile"))).toHaveLength(6);
}, 120_000);
