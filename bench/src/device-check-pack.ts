/**
 * `npm run device:check -- --pack DIR`: the device check as a folder that runs on a machine
 * with no node_modules, no registry and no Node (the lent device machines: node_modules is
 * ~600 MB, over what the device tool carries). It holds only the files the check loads, found
 * by esbuild's metafile (every module reachable from the check, plus tf.js's webgpu backend
 * and Dawn's loader, which the worker imports by resolved path), laid out as node_modules so
 * Node resolves them as here; tf.js's .wasm files and Dawn's dawn.node for linux-x64; and this
 * Node binary and dawn.node xz-compressed (*.xz: python3's lzma unpacks them there). ~40 MiB in all.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));
const workspaces = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { workspaces: string[] }).workspaces;

export async function packDeviceCheck(dir: string): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const entries = [
    "bench/dist/device-check.js",
    // Loaded by dynamic import of a resolved path (webgpu-backend.ts), which esbuild cannot follow.
    "node_modules/@tensorflow/tfjs-backend-webgpu/dist/tf-backend-webgpu.node.js",
    "node_modules/webgpu/index.js",
  ];
  const scratch = mkdtempSync(join(tmpdir(), "trainfleet-device-pack-"));
  const meta = join(scratch, "meta.json");
  const esbuild = spawnSync(
    join(root, "node_modules/.bin/esbuild"),
    [
      ...entries,
      "--bundle",
      "--platform=node",
      "--format=esm",
      // Resolve as Node does: no "module" field or condition, which esbuild otherwise prefers.
      "--conditions=node",
      "--main-fields=main",
      // Keep every file Node will load: no dropping of "sideEffects": false modules.
      "--ignore-annotations",
      `--metafile=${meta}`,
      `--outdir=${join(scratch, "out")}`,
      "--log-level=error",
    ],
    { cwd: root, encoding: "utf8" },
  );
  if (esbuild.status !== 0) throw new Error(`esbuild failed (run npm ci first): ${esbuild.stderr}`);
  const inputs = Object.keys((JSON.parse(readFileSync(meta, "utf8")) as { inputs: Record<string, unknown> }).inputs);
  rmSync(scratch, { recursive: true, force: true });

  const files = new Set<string>(inputs.map((input) => join(root, input)));
  const wasmDir = join(root, "node_modules/@tensorflow/tfjs-backend-wasm/dist");
  for (const file of ["tfjs-backend-wasm.wasm", "tfjs-backend-wasm-simd.wasm"]) files.add(join(wasmDir, file));
  files.add(join(root, "node_modules/webgpu/package.json"));
  // Every package.json above a file (type, main, exports): a package's own and any inner one (build/cjs/package.json).
  for (const file of [...files]) {
    for (let d = dirname(file); d.startsWith(root) && d !== root; d = dirname(d)) {
      if (existsSync(join(d, "package.json"))) files.add(join(d, "package.json"));
    }
  }
  let bytes = 0;
  for (const file of files) {
    const target = join(dir, packedPath(realpathSync(file)));
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(file, target);
    bytes += statSync(target).size;
  }
  // The two big binaries travel xz-compressed: unpacked there next to where they are read.
  bytes += compressed(process.execPath, join(dir, "node.xz"));
  bytes += compressed(
    join(root, "node_modules/webgpu/dist/linux-x64/dawn.node"),
    join(dir, "node_modules/webgpu/dist/linux-x64/dawn.node.xz"),
  );
  console.log(
    `packed ${files.size} files and node ${process.version} into ${dir} (${(bytes / 2 ** 20).toFixed(1)} MiB); run it with node_modules/@trainfleet/bench/dist/device-check.js (bench/README.md)`,
  );
}

function compressed(file: string, target: string): number {
  mkdirSync(dirname(target), { recursive: true });
  const xz = spawnSync("bash", ["-c", 'xz -6 -T0 -c "$0" > "$1"', file, target], { stdio: "inherit" });
  if (xz.status !== 0) throw new Error(`xz failed on ${file}: install xz-utils`);
  return statSync(target).size;
}

/** Where a file of this checkout goes in the pack: workspace packages as node_modules/@trainfleet/NAME, like npm's links. */
function packedPath(file: string): string {
  const path = relative(root, file);
  const top = path.split(sep)[0]!;
  if (top === "node_modules") return path;
  if (workspaces.includes(top)) return join("node_modules", "@trainfleet", path);
  throw new Error(`${file} is neither in node_modules nor in a workspace`);
}
