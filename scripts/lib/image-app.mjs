// The /app folder of the trainfleet container image, laid out from a built checkout.
// Both images use it, so their layouts cannot drift apart: the Dockerfile's build stage
// (after `tsc -b` and `npm prune --omit=dev`) and scripts/build-test-image.sh (from this
// host's files, where nothing can be pulled).
//
//   node image-app.mjs copy ROOT OUT            writes the tree into OUT (a new folder)
//   node image-app.mjs hash ROOT [FILE...]      prints a sha256 of the tree's contents (and
//                                               of FILEs: paths and bytes), for skipping a
//                                               rebuild when nothing changed
//
// The tree: ROOT's package.json; for each workspace the CLI needs (cli and what it depends
// on), its package.json and dist/; and node_modules with exactly the packages those need at
// run time (dependencies and installed optionalDependencies, followed with Node's own
// lookup from each package's folder), plus the optional native TensorFlow packages the worker
// loads when present (@tensorflow/tfjs-node-gpu, @tensorflow/tfjs-node), less the webgpu path
// (LEFT_OUT_OF_IMAGES). Workspaces stay
// symlinked from node_modules/@trainfleet with relative links, valid inside /app; any other
// symlinked package is copied. Files nothing runs are left out: source maps, type
// declarations and markdown. Dependencies of other kinds (dev, test, bench) never enter.
// Plain Node, no packages: it runs before (or without) any install.
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, statSync, symlinkSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

const ENTRY_WORKSPACE = "cli";
const OPTIONAL_NATIVE = ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"];
// The worker's webgpu path stays out of the images: they carry no Vulkan loader for Dawn (the
// GPU image computes with tfjs-node-gpu), and the webgpu package ships Dawn for every platform
// (130 MB). A worker in an image finds it missing and says so in its one "no GPU backend" line.
const LEFT_OUT_OF_IMAGES = new Set(["webgpu", "@tensorflow/tfjs-backend-webgpu"]);
const SKIPPED = [/\.map$/, /\.d\.[cm]?ts$/, /\.md$/i];

function fail(message) {
  process.stderr.write(`image-app: ${message}\n`);
  process.exit(1);
}

function readJson(path) {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    fail(`cannot read ${path}: ${error.message}`);
  }
}

/** The folder of package NAME as Node finds it from FROM (a real folder), or undefined. */
function lookup(from, name) {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * Walks the run-time dependencies from the entry workspace. Returns the workspaces (real
 * folders under root, outside node_modules) and the packages (where they are found, so the
 * copy keeps Node's lookup order), each once.
 */
function closure(root) {
  const isWorkspace = (real) => !relative(root, real).split(sep).includes("node_modules") && !relative(root, real).startsWith("..");
  const workspaces = new Map(); // real dir -> links to it (node_modules paths)
  const packages = new Map(); // real dir -> the path it was found at
  const queue = [];
  const visit = (found, via) => {
    const real = realpathSync(found);
    if (isWorkspace(real)) {
      const links = workspaces.get(real);
      if (links !== undefined) {
        if (via !== undefined) links.add(via);
        return;
      }
      workspaces.set(real, new Set(via === undefined ? [] : [via]));
    } else {
      if (packages.has(real)) return;
      if (relative(root, found).startsWith("..")) fail(`${found} lies outside ${root}`);
      packages.set(real, found);
    }
    queue.push(real);
  };
  const entry = join(root, ENTRY_WORKSPACE);
  if (!existsSync(join(entry, "package.json"))) fail(`${entry}/package.json is missing: is ${root} a trainfleet checkout?`);
  visit(entry, undefined);
  for (const name of OPTIONAL_NATIVE) {
    const found = lookup(root, name);
    if (found !== undefined) visit(found, undefined);
  }
  while (queue.length > 0) {
    const dir = queue.shift();
    const pkg = readJson(join(dir, "package.json"));
    const optional = pkg.optionalDependencies ?? {};
    for (const name of Object.keys({ ...pkg.dependencies, ...optional })) {
      if (name in optional && LEFT_OUT_OF_IMAGES.has(name)) continue;
      const found = lookup(dir, name);
      if (found === undefined) {
        if (name in optional) continue; // not for this platform
        fail(`${name}, a dependency of ${relative(root, dir) || "."}, is not installed: run npm ci`);
      }
      visit(found, found);
    }
  }
  return { workspaces, packages };
}

/** Every entry of the tree, sorted by destination: files (from -> to) and symlinks. */
function entries(root) {
  root = realpathSync(resolve(root));
  const { workspaces, packages } = closure(root);
  const out = [{ kind: "file", from: join(root, "package.json"), to: "package.json" }];
  const addTree = (from, to, { skipNodeModules }) => {
    for (const name of readdirSync(from).sort()) {
      if (skipNodeModules && name === "node_modules") continue; // its packages are walked on their own
      const source = join(from, name);
      const target = to === "" ? name : `${to}/${name}`;
      const stat = statSync(source); // follows links: a package's own symlinks are copied as files
      if (stat.isDirectory()) addTree(source, target, { skipNodeModules: false });
      else if (stat.isFile() && !SKIPPED.some((re) => re.test(name))) out.push({ kind: "file", from: source, to: target });
    }
  };
  for (const [real, links] of workspaces) {
    const at = relative(root, real);
    if (!existsSync(join(real, "dist"))) fail(`${at}/dist is missing: build first (npx tsc -b)`);
    out.push({ kind: "file", from: join(real, "package.json"), to: `${at}/package.json` });
    addTree(join(real, "dist"), `${at}/dist`, { skipNodeModules: false });
    for (const link of links) {
      const to = relative(root, link);
      out.push({ kind: "link", to, target: relative(dirname(link), real) });
    }
  }
  for (const [real, found] of packages) addTree(real, relative(root, found), { skipNodeModules: true });
  return out.sort((a, b) => (a.to < b.to ? -1 : a.to > b.to ? 1 : 0));
}

function copy(root, outDir) {
  if (existsSync(outDir) && readdirSync(outDir).length > 0) fail(`${outDir} is not empty`);
  let files = 0;
  for (const entry of entries(root)) {
    const to = join(outDir, entry.to);
    mkdirSync(dirname(to), { recursive: true });
    if (entry.kind === "link") symlinkSync(entry.target, to);
    else {
      copyFileSync(entry.from, to); // keeps the mode
      files++;
    }
  }
  process.stderr.write(`image-app: ${files} files in ${outDir}\n`);
}

function hash(root, extra) {
  const h = createHash("sha256");
  const add = (label, to, bytes) => {
    h.update(`${label}\0${to}\0${bytes.length}\0`);
    h.update(bytes);
  };
  for (const entry of entries(root)) {
    if (entry.kind === "link") add("link", entry.to, Buffer.from(entry.target));
    else add((statSync(entry.from).mode & 0o111) !== 0 ? "exec" : "file", entry.to, readFileSync(entry.from));
  }
  for (const file of extra) add("extra", file, readFileSync(file)); // follows links
  process.stdout.write(`${h.digest("hex")}\n`);
}

const [command, root, ...rest] = process.argv.slice(2);
if (command === "copy" && root !== undefined && rest.length === 1) copy(root, resolve(rest[0]));
else if (command === "hash" && root !== undefined) hash(root, rest);
else fail("usage: node image-app.mjs copy ROOT OUT | hash ROOT [FILE...]");
