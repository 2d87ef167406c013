/**
 * The real helm binary that scripts/fetch-helm.sh fetched (or $TRAINFLEET_HELM), run as a child
 * process. Tests never fetch it themselves: without it they fail, saying how to get it.
 */
import { spawnSync } from "node:child_process";
import { repoPath } from "./manifests.js";

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

let found: string | undefined;

/** The helm binary's path; throws with scripts/fetch-helm.sh's explanation when there is none. */
export function helmBinary(): string {
  if (found !== undefined) return found;
  const check = spawnSync("bash", [repoPath("scripts", "fetch-helm.sh"), "--check", "--quiet"], { encoding: "utf8" });
  if (check.status !== 0) {
    throw new Error(`no helm binary for the Helm chart tests; run: bash scripts/fetch-helm.sh\n${check.stderr}`);
  }
  found = check.stdout.trim();
  return found;
}

/** Runs helm with `args` from the repository root, with no kubeconfig and a private home. */
export function helm(args: readonly string[]): HelmResult {
  const result = spawnSync(helmBinary(), args, {
    cwd: repoPath(),
    encoding: "utf8",
    timeout: 60_000,
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: process.env["HOME"] ?? "/tmp", KUBECONFIG: "/dev/null", HELM_CACHE_HOME: "/tmp/trainfleet-helm-test/cache", HELM_CONFIG_HOME: "/tmp/trainfleet-helm-test/config", HELM_DATA_HOME: "/tmp/trainfleet-helm-test/data" },
  });
  if (result.error !== undefined) throw result.error;
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}
