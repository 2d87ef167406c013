/**
 * `npm run device:check -- --quick` where no GPU exists (this machine): it times the worker's
 * gradient step of the default MLP and CNN on wasm, says in one line why there is no GPU
 * adapter, and exits 0, so the check that will run on a lent device is known to start.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

const script = fileURLToPath(new URL("../../bench/dist/device-check.js", import.meta.url));

it("device:check --quick prints the wasm rows and why no GPU adapter, and exits 0", () => {
  const run = spawnSync(process.execPath, [script, "--quick"], { encoding: "utf8", timeout: 60_000 });
  expect(run.status, run.stderr).toBe(0);
  const lines = run.stdout.split("\n");
  expect(lines.filter((line) => line.startsWith("no GPU adapter: "))).toEqual([
    expect.stringMatching(/^no GPU adapter: (libvulkan\.so\.1 not found: install the Vulkan loader|Dawn found libvulkan\.so\.1)/),
  ]);
  expect(lines).toContain("wasm: tfjs-backend-wasm 4.22.0, simd, 1 thread");
  for (const model of ["mlp", "cnn"]) {
    // model, backend, step, median, min-max, speed-up: the reference row is 1.00x by definition.
    expect(lines).toContainEqual(
      expect.stringMatching(new RegExp(`^${model} +wasm +worker +\\d+\\.\\d\\d +\\d+\\.\\d\\d-\\d+\\.\\d\\d +1\\.00x$`)),
    );
  }
  expect(lines.filter((line) => / webgpu /.test(line))).toEqual([]);
});
