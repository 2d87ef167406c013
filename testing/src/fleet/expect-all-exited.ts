/** An assertion on a finished job, for tests (vitest): kept apart from ./run-fleet, which benchmarks import too. */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";

/** Fails unless every process that logged into the job folder (its first log line has its pid) has exited. */
export function expectAllExited(folder: string): void {
  const pids = readdirSync(folder)
    .filter((f) => f.endsWith(".log"))
    .flatMap((f) => readFileSync(join(folder, f), "utf8").split("\n").filter(Boolean).slice(0, 1))
    .map((line) => (JSON.parse(line) as { pid: number }).pid);
  expect(pids.length).toBeGreaterThan(0);
  const alive = pids.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
  expect(alive).toEqual([]);
}
