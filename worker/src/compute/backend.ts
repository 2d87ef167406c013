/**
 * Picks the tf.js backend a worker computes on. `auto` takes a GPU first (native TensorFlow
 * from tfjs-node-gpu, then tf.js's webgpu backend over Dawn), then native TensorFlow on the
 * CPU (tfjs-node), then wasm, then cpu. The native and webgpu packages are optional: users
 * install them on real hosts, so they are loaded by dynamic import only when present. wasm is
 * pinned to ONE thread, because several workers share a machine and a single-threaded kernel
 * also sums in a fixed order, so results repeat bit for bit. Backends differ in the last bits
 * of a gradient: the worker reports the one it chose, and a bitwise resume needs the same.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { getThreadsCount, setThreadsCount, setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import { useWebGpu, type WebGpuOptions } from "./webgpu-backend.js";

export type BackendChoice = "auto" | "tensorflow" | "webgpu" | "wasm" | "cpu";

/** Where the optional packages are resolved from, and what webgpu must be able to do (webgpu-backend.ts). */
export type SelectBackendOptions = WebGpuOptions;

interface Selected {
  name: string;
  detail: string;
}

const require = createRequire(import.meta.url);
const NATIVE_GPU = "@tensorflow/tfjs-node-gpu";
const NATIVE_CPU = "@tensorflow/tfjs-node";
const TFJS_VERSION = tf.version_core;

export async function selectBackend(
  choice: BackendChoice,
  logger: Logger,
  options: SelectBackendOptions = {},
): Promise<{ name: string; detail: string }> {
  const selected = await pick(choice, logger, options);
  // From here on tf.js's console.warn banners ("install tfjs-node...") would only be noise next
  // to our own log; it stays on until now so that a backend's init failure still prints its cause.
  tf.enableProdMode();
  logger.info({ backend: selected.name, detail: selected.detail }, "compute backend selected");
  return selected;
}

async function pick(choice: BackendChoice, logger: Logger, options: SelectBackendOptions): Promise<Selected> {
  switch (choice) {
    case "tensorflow": {
      const failures: string[] = [];
      const native = await tryNative([NATIVE_GPU, NATIVE_CPU], logger, failures, options);
      if (native) return native;
      throw unavailable(
        "tensorflow",
        `${failures.join("; ")}. On a GPU host run \`npm install @tensorflow/tfjs-node-gpu@${TFJS_VERSION}\` (needs CUDA), ` +
          `elsewhere \`npm install @tensorflow/tfjs-node@${TFJS_VERSION}\`; or choose the wasm backend`,
      );
    }
    case "webgpu": {
      const webgpu = await useWebGpu(options);
      if (webgpu.ok) return { name: "webgpu", detail: webgpu.detail };
      throw unavailable("webgpu", `${webgpu.reason}: ${webgpu.fix}`);
    }
    case "wasm":
      try {
        return await useWasm();
      } catch (error) {
        throw unavailable(
          "wasm",
          `${message(error)}. Reinstall @tensorflow/tfjs-backend-wasm@${TFJS_VERSION}, or choose the cpu backend`,
          error,
        );
      }
    case "cpu":
      return useCpu();
    case "auto": {
      const noGpu: string[] = [];
      const nativeGpu = await tryNative([NATIVE_GPU], logger, noGpu, options);
      if (nativeGpu) return nativeGpu;
      const webgpu = await useWebGpu(options);
      if (webgpu.ok) return { name: "webgpu", detail: webgpu.detail };
      noGpu.push(`webgpu: ${webgpu.reason}`);
      // One line for all GPU paths: a CPU-only host says why on every start, without a warning.
      logger.info({ reasons: noGpu }, `no GPU backend: ${noGpu.join("; ")}`);
      const nativeCpu = await tryNative([NATIVE_CPU], logger, [], options);
      if (nativeCpu) return nativeCpu;
      try {
        return await useWasm();
      } catch (error) {
        logger.warn({ backend: "wasm", err: message(error) }, "wasm backend failed; falling back to the (slow) cpu backend");
      }
      return useCpu();
    }
  }
}

/** Native TensorFlow from the first of `packages` that is installed and loads; undefined if none. */
async function tryNative(
  packages: readonly string[],
  logger: Logger,
  failures: string[],
  options: SelectBackendOptions,
): Promise<Selected | undefined> {
  const resolver = options.resolveFrom === undefined ? require : createRequire(options.resolveFrom);
  for (const pkg of packages) {
    // Resolving first tells "not installed" (normal) from "installed but broken" (worth a warning).
    let entry: string;
    try {
      entry = resolver.resolve(pkg);
    } catch {
      logger.debug({ package: pkg }, "optional native backend not installed");
      failures.push(`${pkg} is not installed`);
      continue;
    }
    try {
      // By resolved path: the package found above is the one loaded (and tsc needs no types for it).
      const mod = (await import(pathToFileURL(entry).href)) as { version?: Record<string, string> };
      if (!(await tf.setBackend("tensorflow"))) throw new Error(`tf.setBackend("tensorflow") failed after loading ${pkg}`);
      await tf.ready();
      const version = mod.version?.[pkg.slice("@tensorflow/".length)] ?? "unknown version";
      return { name: "tensorflow", detail: `${pkg} ${version}` };
    } catch (error) {
      logger.warn({ package: pkg, err: message(error) }, "native backend installed but failed to load; skipping it");
      failures.push(`${pkg} failed to load: ${message(error)}`);
    }
  }
  return undefined;
}

let wasmConfigured = false;

async function useWasm(): Promise<Selected> {
  if (!wasmConfigured) {
    // The .wasm binaries sit next to the package's node entry point in node_modules.
    const dir = dirname(require.resolve("@tensorflow/tfjs-backend-wasm"));
    for (const file of ["tfjs-backend-wasm.wasm", "tfjs-backend-wasm-simd.wasm"]) {
      if (!existsSync(join(dir, file))) throw new Error(`${file} is missing from ${dir}`);
    }
    setWasmPaths(`${dir}/`);
    // tf.js already disables wasm threads under Node; pin it anyway so a future default can't
    // start a per-core pool in every worker process or make sums order-dependent.
    tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
    setThreadsCount(1);
    wasmConfigured = true;
  }
  if (!(await tf.setBackend("wasm"))) throw new Error("the wasm backend failed to initialise");
  await tf.ready();
  const simd = (await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT")) === true;
  const threads = getThreadsCount();
  if (threads !== 1) throw new Error(`wasm started ${threads} threads, expected 1`);
  return { name: "wasm", detail: `tfjs-backend-wasm ${TFJS_VERSION}, ${simd ? "simd" : "no simd"}, 1 thread` };
}

async function useCpu(): Promise<Selected> {
  if (!(await tf.setBackend("cpu"))) throw unavailable("cpu", "the cpu backend failed to initialise");
  await tf.ready();
  return { name: "cpu", detail: `tfjs-backend-cpu ${TFJS_VERSION} (plain JavaScript; slowest)` };
}

function unavailable(choice: BackendChoice, how: string, cause?: unknown): TrainfleetError {
  return new TrainfleetError(Code.FAILED_PRECONDITION, `backend "${choice}" is unavailable: ${how}`, cause === undefined ? {} : { cause });
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
