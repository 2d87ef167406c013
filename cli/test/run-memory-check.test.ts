/**
 * `trainfleet run` refuses a job too big for the machine before it makes a folder or starts
 * a process (issue 14: a job that passed validation took the fleet to 6.9 GB in seconds).
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { trainfleet } from "@trainfleet/testing/fleet/run-fleet";
import { afterAll, expect, it } from "vitest";

const jobsDir = mkdtempSync(join(tmpdir(), "trainfleet-memory-check-"));
afterAll(() => rmSync(jobsDir, { recursive: true, force: true }));

it("refuses, naming its need and the machine's total memory, a job under the parameter cap that this machine cannot hold", async () => {
  // 784 x 65536 + 65536 + 65536 x 14000 + 14000 + 14000 x 10 + 10 parameters: under the 10^9 cap.
  const parameters = 784 * 65536 + 65536 + 65536 * 14000 + 14000 + 14000 * 10 + 10;
  // Each worker adds 4 bytes a parameter on the shards and 16 in its own process: enough of them to pass the machine's memory.
  const workers = Math.ceil(totalmem() / (20 * parameters)) + 1;
  const result = await trainfleet([
    "run",
    "--jobs-dir",
    jobsDir,
    "--hidden",
    "65536,14000",
    "--workers",
    String(workers),
    "--backend",
    "cpu",
  ]);
  expect(result.code).not.toBe(0);
  expect(result.stderr).toContain(`(${parameters} parameters: `);
  expect(result.stderr).toContain(
    `but this machine has ${(totalmem() / 2 ** 30).toFixed(1)} GiB of memory in all (os.totalmem); use a smaller model or fewer workers, or run the job on Kubernetes`,
  );
  expect(readdirSync(jobsDir)).toEqual([]);
}, 60_000);
