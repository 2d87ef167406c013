/**
 * How the compute backend is chosen where no GPU backend can run (this machine: no
 * libvulkan.so.1, tfjs-node-gpu cannot install): `auto` falls back to wasm saying why in one
 * line, a forced `webgpu` fails naming why and the fix, and the reason tells a missing package
 * (a resolver rooted where none is installed) from a missing adapter. Dawn's own no-op GPU
 * (`backend=null`, part of the webgpu package) drives the path past the adapter for real.
 */

import { mkdtempSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import { silentLogger } from "@trainfleet/runtime";
import { describe, expect, it } from "vitest";
import { selectBackend } from "../src/compute/backend.js";

interface Line {
  level: string;
  message: string;
  fields: object;
}

function capturingLogger(): { logger: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const at =
    (level: string) =>
    (fields: object, message: string): void => {
      lines.push({ level, message, fields });
    };
  const logger: Logger = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error"), child: () => logger };
  return { logger, lines };
}

/** A place with no node_modules above it: every optional package is missing from there. */
const nowhere = join(mkdtempSync(join(tmpdir(), "trainfleet-no-packages-")), "resolver.js");
const nativeGpuInstalled = (() => {
  try {
    createRequire(import.meta.url).resolve("@tensorflow/tfjs-node-gpu");
    return true;
  } catch {
    return false;
  }
})();

async function failure(promise: Promise<unknown>): Promise<TrainfleetError> {
  const outcome = await promise.then(
    (selected) => selected,
    (error: unknown) => error,
  );
  expect(outcome).toBeInstanceOf(TrainfleetError);
  return outcome as TrainfleetError;
}

describe("the webgpu backend", () => {
  it("forced where no adapter exists: FAILED_PRECONDITION naming the adapter and the fix", async () => {
    const error = await failure(selectBackend("webgpu", silentLogger));
    expect(error.code).toBe(Code.FAILED_PRECONDITION);
    // No Vulkan loader here; where one is, Dawn finds no GPU it accepts (lavapipe) or tf.js cannot read synchronously.
    expect(error.message).toMatch(
      /^backend "webgpu" is unavailable: (no adapter \(libvulkan\.so\.1 not found\): install the Vulkan loader|no adapter \(Dawn found libvulkan\.so\.1|adapter .* cannot read a GPU tensor synchronously)/,
    );
    expect(error.message).not.toContain("not installed");
  });

  it("forced where its packages are missing: says which, and the npm install that fixes it", async () => {
    const error = await failure(selectBackend("webgpu", silentLogger, { resolveFrom: nowhere }));
    expect(error.code).toBe(Code.FAILED_PRECONDITION);
    expect(error.message).toContain("@tensorflow/tfjs-backend-webgpu and webgpu are not installed");
    expect(error.message).toContain("npm install @tensorflow/tfjs-backend-webgpu@4.22.0 webgpu@0.6.2");
  });

  // Dawn's no-op GPU gives a real adapter, device and tf.js backend, with no GPU behind them.
  it("on an adapter, refuses the worker's step: tf.js cannot read a GPU tensor synchronously under Node", async () => {
    const error = await failure(selectBackend("webgpu", silentLogger, { dawn: ["backend=null"] }));
    expect(error.code).toBe(Code.FAILED_PRECONDITION);
    expect(error.message).toContain("cannot read a GPU tensor synchronously under Node (OffscreenCanvas is not defined)");
    expect(error.message).toContain("@tensorflow/tfjs-node-gpu");
  });

  it("on an adapter, without the synchronous-read requirement, becomes tf.js's active backend", async () => {
    const selected = await selectBackend("webgpu", silentLogger, { dawn: ["backend=null"], requireSyncRead: false });
    expect(selected.name).toBe("webgpu");
    expect(selected.detail).toMatch(/^tfjs-backend-webgpu 4\.22\.0 on .* \(Dawn, webgpu 0\.6\.2\)$/);
    expect(tf.getBackend()).toBe("webgpu");
    expect((await selectBackend("wasm", silentLogger)).name).toBe("wasm");
  });
});

describe("auto", () => {
  const noGpuLines = (lines: Line[]) => lines.filter((line) => line.message.startsWith("no GPU backend: "));

  it.each([
    [
      "no adapter",
      {},
      /; webgpu: no adapter \(libvulkan\.so\.1 not found\)$|; webgpu: no adapter \(Dawn found|; webgpu: adapter .* cannot read/,
    ],
    ["packages missing", { resolveFrom: nowhere }, /; webgpu: @tensorflow\/tfjs-backend-webgpu and webgpu are not installed$/],
    ["no synchronous reads", { dawn: ["backend=null"] }, /; webgpu: adapter .* cannot read a GPU tensor synchronously under Node/],
  ] as const)("with %s: selects wasm and says why in exactly one info line", async (_, options, webgpuReason) => {
    const { logger, lines } = capturingLogger();
    const selected = await selectBackend("auto", logger, options);
    if (nativeGpuInstalled && options !== undefined && !("resolveFrom" in options)) {
      // A native GPU backend comes first where installed: nothing falls back, nothing to say.
      expect(selected.name).toBe("tensorflow");
      expect(noGpuLines(lines)).toEqual([]);
      return;
    }
    expect(selected.name).toBe("wasm");
    const [line, ...more] = noGpuLines(lines);
    expect(more).toEqual([]);
    expect(line?.level).toBe("info");
    expect(line?.message).toMatch(/^no GPU backend: @tensorflow\/tfjs-node-gpu is not installed; webgpu: /);
    expect(line?.message).toMatch(webgpuReason);
    expect(lines.filter((l) => l.level === "warn" || l.level === "error")).toEqual([]);
    expect(lines.at(-1)).toMatchObject({ level: "info", message: "compute backend selected", fields: { backend: "wasm" } });
  });
});
