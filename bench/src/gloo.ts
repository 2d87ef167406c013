/**
 * The gloo baseline: torch.distributed all_reduce in N processes of Debian's python3 with
 * python3-torch (the only python that can import it here). Absent torch, a clear note.
 */

import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { freePort } from "./free-port.js";

const python = "/usr/bin/python3";
const script = fileURLToPath(new URL("../gloo-all-reduce.py", import.meta.url));

export function glooAvailable(): { ok: true; version: string } | { ok: false; why: string } {
  const probe = spawnSync(python, ["-c", "import torch, torch.distributed as d; print(torch.__version__, d.is_gloo_available())"], {
    encoding: "utf8",
  });
  if (probe.status !== 0) return { ok: false, why: `no torch for ${python} (install Debian's python3-torch to compare with gloo)` };
  const [version, gloo] = probe.stdout.trim().split(" ");
  return gloo === "True" ? { ok: true, version: version ?? "?" } : { ok: false, why: "torch was built without gloo" };
}

/**
 * Per size (bytes): the median time (ms) of each sitting of gloo's all_reduce alone, or with
 * `step` "sgd-momentum" of what a DDP step does with it (the average and torch's SGD step).
 */
export async function glooSittings(
  workers: number,
  sizes: number[],
  sittings: number,
  rounds: number[],
  step: "none" | "sgd-momentum" = "none",
): Promise<Map<number, number[]>> {
  const port = await freePort();
  const args = (rank: number) => [
    script,
    String(rank),
    String(workers),
    String(port),
    sizes.join(","),
    String(sittings),
    rounds.join(","),
    step,
  ];
  const children = Array.from({ length: workers }, (_, rank) =>
    spawn(python, args(rank), {
      stdio: ["ignore", "pipe", "inherit"],
      // One BLAS/OpenMP thread per process, like the Node side.
      env: { ...process.env, OMP_NUM_THREADS: "1" },
    }),
  );
  let output = "";
  children[0]!.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const codes = await Promise.all(children.map(async (child) => ((await once(child, "exit")) as [number | null])[0]));
  if (codes.some((code) => code !== 0)) throw new Error(`gloo benchmark processes exited with ${codes.join(", ")}`);
  const parsed = JSON.parse(output) as Record<string, number[]>;
  return new Map(Object.entries(parsed).map(([size, seconds]) => [Number(size), seconds.map((s) => s * 1000)]));
}
