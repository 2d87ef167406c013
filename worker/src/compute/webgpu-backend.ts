/**
 * The WebGPU compute path: tf.js's webgpu backend (@tensorflow/tfjs-backend-webgpu) over
 * Dawn, the WebGPU implementation the `webgpu` package ships prebuilt (dawn.node). Both are
 * optional dependencies, loaded by dynamic import only once they resolve, and each step that
 * can fail (a package, the Vulkan loader, the adapter, the device, the backend, a synchronous
 * read) ends in a reason in words rather than an exception, so `auto` can fall back and say
 * why. Where nothing is there the answer costs milliseconds: the Vulkan loader is looked for
 * before Dawn is loaded at all.
 */
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import * as tf from "@tensorflow/tfjs-core";

export const WEBGPU_PACKAGES = ["@tensorflow/tfjs-backend-webgpu", "webgpu"] as const;

/** What to run where a package is missing: the versions @trainfleet/worker pins as optionalDependencies. */
export const WEBGPU_INSTALL = "npm install @tensorflow/tfjs-backend-webgpu@4.22.0 webgpu@0.6.2";

/** Dawn looks for the GPU through the Vulkan loader on Linux, by this name (the webgpu package does not bundle it). */
const VULKAN_LOADER = "libvulkan.so.1";

export interface WebGpuOptions {
  /** Where the optional packages are resolved from (a file path or file: URL); by default this module's. */
  resolveFrom?: string | undefined;
  /**
   * The worker's step reads gradients with dataSync(): by default a backend that cannot read
   * a GPU tensor synchronously is refused. false: keep it (for a benchmark that reads with data()).
   */
  requireSyncRead?: boolean | undefined;
  /**
   * Options for Dawn's create() (the webgpu package's README lists them). One naming a backend
   * other than Vulkan, e.g. "backend=null" (Dawn's no-op GPU, for exercising this path where
   * no GPU exists), lifts the need for the Vulkan loader.
   */
  dawn?: readonly string[] | undefined;
}

export interface WebGpuAdapter {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
}

export type WebGpuOutcome =
  | { ok: true; adapter: WebGpuAdapter; detail: string }
  | {
      ok: false;
      /** Why, in words, e.g. "no adapter (libvulkan.so.1 not found)". */
      reason: string;
      /** What to do about it. */
      fix: string;
    };

interface DawnModule {
  create(options: string[]): DawnGpu;
  globals: Record<string, unknown>;
}
interface DawnGpu {
  requestAdapter(options?: { powerPreference?: string }): Promise<DawnAdapter | null>;
}
interface DawnAdapter {
  features: { has(name: string): boolean };
  limits: Record<string, number>;
  info?: Partial<WebGpuAdapter> & { isFallbackAdapter?: boolean };
  requestDevice(descriptor: object): Promise<DawnDevice>;
}
interface DawnDevice {
  destroy(): void;
}
interface TfjsWebGpuModule {
  WebGPUBackend: new (device: DawnDevice, adapterInfo: unknown) => tf.KernelBackend;
}

/** The one backend this process made, kept: Dawn's instance must stay referenced while the backend lives. */
let active: { gpu: DawnGpu; dawnOptions: string; outcome: Extract<WebGpuOutcome, { ok: true }> } | undefined;

/** Makes tf.js's webgpu backend the active one, or says why it cannot. */
export async function useWebGpu(options: WebGpuOptions = {}): Promise<WebGpuOutcome> {
  const require = createRequire(options.resolveFrom ?? import.meta.url);
  const resolved: string[] = [];
  const missing: string[] = [];
  for (const pkg of WEBGPU_PACKAGES) {
    try {
      resolved.push(require.resolve(pkg));
    } catch {
      missing.push(pkg);
    }
  }
  if (missing.length > 0) {
    return {
      ok: false,
      reason: `${missing.join(" and ")} ${missing.length > 1 ? "are" : "is"} not installed`,
      fix: `run \`${WEBGPU_INSTALL}\` (optional dependencies of @trainfleet/worker: an install with --omit=optional leaves them out)`,
    };
  }
  const dawnOptions = [...(options.dawn ?? [])];
  if (active !== undefined && tf.findBackend("webgpu") !== null) {
    if (active.dawnOptions === dawnOptions.join(" ")) {
      if (!(await tf.setBackend("webgpu"))) return initFailed('tf.setBackend("webgpu") failed on the backend made earlier');
      const unreadable = (options.requireSyncRead ?? true) ? syncReadFailure() : undefined;
      return unreadable === undefined ? active.outcome : syncReadRefused(active.outcome.adapter, unreadable);
    }
    // Other Dawn options: the backend made earlier goes, and a new one is made below.
    tf.removeBackend("webgpu");
    releaseFromTfjs();
    active = undefined;
  }
  const otherBackend = dawnOptions.some((option) => option.startsWith("backend=") && option !== "backend=vulkan");
  const loader = otherBackend ? undefined : vulkanLoader();
  if (loader !== undefined) return loader;

  const [tfjsWebGpuPath, dawnPath] = resolved as [string, string];
  let dawn: DawnModule;
  let tfjsWebGpu: TfjsWebGpuModule;
  try {
    // tf.js's package registers a webgpu backend of its own at import where navigator.gpu is
    // already set; it is imported first so that the backend made below is the only one.
    tfjsWebGpu = (await import(pathToFileURL(tfjsWebGpuPath).href)) as TfjsWebGpuModule;
    dawn = (await import(pathToFileURL(dawnPath).href)) as DawnModule;
  } catch (error) {
    return initFailed(`loading the packages failed: ${message(error)}`);
  }

  let gpu: DawnGpu | undefined = dawn.create(dawnOptions);
  let device: DawnDevice | undefined;
  try {
    const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
    if (adapter === null) {
      return {
        ok: false,
        reason: `no adapter (Dawn found ${VULKAN_LOADER} but no Vulkan GPU it accepts; software Vulkan such as lavapipe lacks features Dawn needs)`,
        fix: "install the GPU's Vulkan driver (NVIDIA: the driver's nvidia_icd.json; VK_DRIVER_FILES may name it)",
      };
    }
    const info = adapterInfo(adapter);
    if (adapter.info?.isFallbackAdapter === true) {
      return {
        ok: false,
        reason: `only a software adapter (${describe(info)}), slower than wasm`,
        fix: "install the GPU's Vulkan driver, or choose the wasm backend",
      };
    }
    device = await adapter.requestDevice(deviceDescriptor(adapter));
    exposeToTfjs(dawn, gpu);
    const backend = new tfjsWebGpu.WebGPUBackend(device, adapter.info);
    // Its "synchronous reads are slow" console warning would only repeat what the probe below says.
    (backend as unknown as { hasReadSyncWarned: boolean }).hasReadSyncWarned = true;
    tf.registerBackend("webgpu", () => backend);
    if (!(await tf.setBackend("webgpu"))) throw new Error('tf.setBackend("webgpu") failed');
    await tf.ready();
    if (options.requireSyncRead ?? true) {
      const unreadable = syncReadFailure();
      if (unreadable !== undefined) return syncReadRefused(info, unreadable);
    }
    const detail = `tfjs-backend-webgpu ${tf.version_core} on ${describe(info)} (Dawn, webgpu ${packageVersion(require, "webgpu")})`;
    active = { gpu, dawnOptions: dawnOptions.join(" "), outcome: { ok: true, adapter: info, detail } };
    gpu = undefined;
    device = undefined;
    return active.outcome;
  } catch (error) {
    return initFailed(message(error));
  } finally {
    // Anything not kept is let go: a referenced Dawn instance keeps Node from exiting.
    if (gpu !== undefined) {
      if (tf.findBackend("webgpu") !== null) tf.removeBackend("webgpu");
      device?.destroy();
      releaseFromTfjs();
    }
  }
}

/** undefined when the Vulkan loader can be loaded (or on an OS where Dawn does not use it); else why not. */
function vulkanLoader(): WebGpuOutcome | undefined {
  if (process.platform !== "linux") return undefined;
  try {
    // The same dlopen search Dawn makes (LD_LIBRARY_PATH, the ld.so cache). The loader is no
    // Node addon, so a load that finds it ends in "did not self-register", which means present.
    process.dlopen({ exports: {} }, VULKAN_LOADER);
  } catch (error) {
    const text = message(error);
    if (text.includes("did not self-register")) return undefined;
    const notFound = text.includes("cannot open shared object file");
    return {
      ok: false,
      reason: notFound ? `no adapter (${VULKAN_LOADER} not found)` : `no adapter (${VULKAN_LOADER} failed to load: ${text})`,
      fix: `install the Vulkan loader (Debian/Ubuntu: apt-get install libvulkan1) and the GPU's Vulkan driver, or put ${VULKAN_LOADER} on LD_LIBRARY_PATH`,
    };
  }
  return undefined;
}

/** The limits tf.js's own registration asks for, and timestamp queries where offered (its profiler uses them). */
function deviceDescriptor(adapter: DawnAdapter): object {
  const limits = adapter.limits;
  return {
    requiredFeatures: adapter.features.has("timestamp-query") ? ["timestamp-query"] : [],
    requiredLimits: {
      maxComputeWorkgroupStorageSize: limits["maxComputeWorkgroupStorageSize"],
      maxComputeWorkgroupsPerDimension: limits["maxComputeWorkgroupsPerDimension"],
      maxStorageBufferBindingSize: limits["maxStorageBufferBindingSize"],
      maxBufferSize: limits["maxBufferSize"],
      maxComputeWorkgroupSizeX: limits["maxComputeWorkgroupSizeX"],
      maxComputeInvocationsPerWorkgroup: limits["maxComputeInvocationsPerWorkgroup"],
    },
  };
}

/**
 * tf.js's webgpu backend is written for browsers: it checks navigator.gpu and uses the
 * GPUBufferUsage, GPUMapMode, ... constants as globals. Dawn's are put there, never over ones
 * already defined.
 */
function exposeToTfjs(dawn: DawnModule, gpu: DawnGpu): void {
  const global = globalThis as Record<string, unknown>;
  for (const [name, value] of Object.entries(dawn.globals)) if (!(name in global)) global[name] = value;
  if (global["navigator"] === undefined) Object.defineProperty(globalThis, "navigator", { value: {}, configurable: true, writable: true });
  Object.defineProperty(global["navigator"], "gpu", { value: gpu, configurable: true, writable: true });
}

function releaseFromTfjs(): void {
  const navigator = (globalThis as Record<string, unknown>)["navigator"] as Record<string, unknown> | undefined;
  if (navigator !== undefined && "gpu" in navigator) delete navigator["gpu"];
}

/** undefined when a GPU-resident tensor (more elements than tf.js hands to the CPU) reads back with dataSync(); else the error. */
function syncReadFailure(): string | undefined {
  try {
    const values = tf.tidy(() => tf.add(tf.ones([4096]), tf.ones([4096])).dataSync());
    return values[4095] === 2 ? undefined : `dataSync() returned ${values[4095]} where 2 was written`;
  } catch (error) {
    return message(error);
  }
}

function syncReadRefused(info: WebGpuAdapter, why: string): WebGpuOutcome {
  return {
    ok: false,
    reason: `adapter ${describe(info)} works, but tf.js's webgpu backend cannot read a GPU tensor synchronously under Node (${why}), and the worker's step reads its gradient with dataSync()`,
    fix: "on an NVIDIA host install @tensorflow/tfjs-node-gpu instead (needs CUDA), or choose the wasm backend",
  };
}

function adapterInfo(adapter: DawnAdapter): WebGpuAdapter {
  const info = adapter.info ?? {};
  return {
    vendor: info.vendor ?? "",
    architecture: info.architecture ?? "",
    device: info.device ?? "",
    description: info.description ?? "",
  };
}

function describe(info: WebGpuAdapter): string {
  const name = [info.vendor, info.architecture].filter((s) => s !== "").join(" ") || "unknown vendor";
  return info.description === "" ? name : `${name} (${info.description})`;
}

function packageVersion(require: NodeJS.Require, pkg: string): string {
  try {
    return (require(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    return "unknown version";
  }
}

function initFailed(why: string): WebGpuOutcome {
  return {
    ok: false,
    reason: `backend init failed: ${why}`,
    fix: "check the GPU's Vulkan driver (vulkaninfo), or choose the wasm backend",
  };
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
