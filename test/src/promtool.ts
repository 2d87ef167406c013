/**
 * Prometheus's real promtool, which scripts/fetch-promtool.sh fetched (or $TRAINFLEET_PROMTOOL,
 * or one on PATH). Tests never fetch it themselves: without it they fail, saying how to get it.
 */
import { spawnSync } from "node:child_process";
import { repoPath } from "./manifests.js";

let found: string | undefined;

/** promtool's path; throws with scripts/fetch-promtool.sh's explanation when there is none. */
export function promtoolBinary(): string {
  if (found !== undefined) return found;
  const check = spawnSync("bash", [repoPath("scripts", "fetch-promtool.sh"), "--check", "--quiet"], { encoding: "utf8" });
  if (check.status !== 0) throw new Error(`no promtool for the /metrics checks; run: bash scripts/fetch-promtool.sh\n${check.stderr}`);
  found = check.stdout.trim();
  return found;
}

/** `promtool check metrics` on an exposition: its exit code and what it printed (lint problems). */
export function checkMetrics(exposition: string): { code: number; output: string } {
  const result = spawnSync(promtoolBinary(), ["check", "metrics"], { input: exposition, encoding: "utf8", timeout: 30_000 });
  if (result.error !== undefined) throw result.error;
  return { code: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
}
