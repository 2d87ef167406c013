/**
 * The Dockerfile, which cannot be built here (nothing can be pulled: no node:22-bookworm, no
 * CUDA base, no npm registry), checked as far as that allows: its stages, build args and the
 * ENV the final stage sets, read from the file; the RUN steps that pick the compute backend run
 * for real under /bin/sh (as Docker runs them) with stand-ins for npm, find, groupadd and
 * useradd; and the one CUDA base (scripts/build-image.sh --gpu) named consistently, with the
 * CUDA and cuDNN libraries that @tensorflow/tfjs-node-gpu's libtensorflow loads. The GPU image
 * itself is neither built nor run here: no GPU, no registry.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { repoPath, repoRoot } from "@trainfleet/testing/manifests";
import { afterAll, describe, expect, it } from "vitest";

interface Instruction {
  keyword: string;
  args: string;
}

interface Stage {
  from: string;
  name: string | undefined;
  instructions: Instruction[];
}

/** Instructions as Docker reads them: continuation lines joined, comment lines dropped (inside a continuation too). */
function parseDockerfile(text: string): { globalArgs: Instruction[]; stages: Stage[] } {
  const instructions: Instruction[] = [];
  let pending = "";
  for (const line of text.split("\n")) {
    if (/^\s*#/.test(line) || (pending === "" && line.trim() === "")) continue;
    const continued = /\\\s*$/.test(line);
    pending += continued ? `${line.replace(/\\\s*$/, "")}\n` : line;
    if (continued) continue;
    const match = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(pending)!;
    instructions.push({ keyword: match[1]!.toUpperCase(), args: match[2]!.trim() });
    pending = "";
  }
  const globalArgs: Instruction[] = [];
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === "FROM") {
      const [from, as, name] = instruction.args.split(/\s+/);
      stages.push({ from: from!, name: as?.toUpperCase() === "AS" ? name : undefined, instructions: [] });
    } else if (stages.length === 0) globalArgs.push(instruction);
    else stages.at(-1)!.instructions.push(instruction);
  }
  return { globalArgs, stages };
}

const dockerfile = parseDockerfile(readFileSync(repoPath("Dockerfile"), "utf8"));
const [nodeStage, buildStage, finalStage] = dockerfile.stages as [Stage, Stage, Stage];
const all = (stage: Stage, keyword: string) => stage.instructions.filter((instruction) => instruction.keyword === keyword);
const runStep = (stage: Stage, marker: string) => {
  const steps = all(stage, "RUN").filter((instruction) => instruction.args.includes(marker));
  expect(steps, `one RUN with ${marker}`).toHaveLength(1);
  return steps[0]!.args;
};

/** Docker's substitution in ENV: $VAR, ${VAR}, ${VAR:-word} and ${VAR:+word}, from the build args. */
function substitute(value: string, args: Record<string, string>): string {
  return value.replace(/\$\{(\w+)(?::([-+])([^}]*))?\}|\$(\w+)/g, (_, braced, operator, word, bare) => {
    const current = args[braced ?? bare] ?? "";
    if (operator === "+") return current === "" ? "" : word;
    if (operator === "-") return current === "" ? word : current;
    return current;
  });
}

/** The CUDA base of the GPU image, as scripts/build-image.sh --gpu passes it. */
const buildImageScript = readFileSync(repoPath("scripts", "build-image.sh"), "utf8");
const cudaRuntimeImage = /^cuda_runtime_image=(\S+)$/m.exec(buildImageScript)?.[1];

const scratch = mkdtempSync(join(tmpdir(), "trainfleet-dockerfile-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A folder of executables named `names` that record their arguments to $STAND_IN_LOG and exit 0. */
function recordingStandIns(folder: string, names: string[]): void {
  mkdirSync(folder, { recursive: true });
  for (const name of names) {
    const path = join(folder, name);
    writeFileSync(path, `#!/bin/sh\nprintf '%s\\n' "${name} $*" >> "$STAND_IN_LOG"\n`);
    chmodSync(path, 0o755);
  }
}

/** Runs a RUN step as Docker does (/bin/sh -c), with stand-ins first on PATH and the build args in its environment. */
function run(script: string, standIns: string, env: Record<string, string>) {
  const log = join(scratch, `log-${Math.random().toString(36).slice(2)}`);
  writeFileSync(log, "");
  const result = spawnSync("/bin/sh", ["-c", script], {
    cwd: repoRoot,
    encoding: "utf8",
    env: { PATH: `${standIns}:${dirname(process.execPath)}:/usr/bin:/bin`, STAND_IN_LOG: log, ...env },
  });
  return { code: result.status, stderr: result.stderr, calls: readFileSync(log, "utf8").split("\n").filter(Boolean) };
}

describe("the Dockerfile's stages and build args", () => {
  it("builds on node:22-bookworm and ships on RUNTIME_IMAGE (node:22-bookworm-slim by default) with Node 22 copied in", () => {
    expect(dockerfile.globalArgs).toEqual([{ keyword: "ARG", args: "RUNTIME_IMAGE=node:22-bookworm-slim" }]);
    expect(dockerfile.stages.map((stage) => [stage.from, stage.name])).toEqual([
      ["node:22-bookworm-slim", "node"],
      ["node:22-bookworm", "build"],
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the Dockerfile's own substitution, as written there
      ["${RUNTIME_IMAGE}", undefined],
    ]);
    expect(nodeStage.instructions).toEqual([]);
    // A CUDA base has no Node: the final stage takes the node stage's, whatever its base.
    expect(all(finalStage, "COPY")[0]).toEqual({ keyword: "COPY", args: "--from=node /usr/local/bin/node /usr/local/bin/node" });
    // TFJS_BACKEND is declared in each stage that reads it (an ARG's scope is its stage), empty by default.
    for (const stage of [buildStage, finalStage]) expect(all(stage, "ARG")).toEqual([{ keyword: "ARG", args: 'TFJS_BACKEND=""' }]);
  });

  it("lays out the final stage as scripts/build-test-image.sh's image: user, working directory and entrypoint", () => {
    const testImage = readFileSync(repoPath("scripts", "build-test-image.sh"), "utf8");
    const changes = [...testImage.matchAll(/--change '(USER|WORKDIR|ENTRYPOINT) (.*)'/g)].map((match) => [match[1], match[2]]);
    expect(changes).toHaveLength(3);
    for (const [keyword, args] of changes) expect(all(finalStage, keyword!).map((instruction) => instruction.args)).toEqual([args]);
    expect(all(finalStage, "USER")[0]!.args).toBe("65532:65532");
  });

  it("sets TRAINFLEET_BACKEND=tensorflow with a native backend and leaves it empty (the worker's default, auto) without one", () => {
    const env = all(finalStage, "ENV").map((instruction) => /^(\w+)=(.*)$/.exec(instruction.args)!.slice(1));
    expect(env.map(([name]) => name)).toEqual(["TRAINFLEET_BACKEND"]);
    const backendFor = (TFJS_BACKEND: string) => substitute(env[0]![1]!, { TFJS_BACKEND });
    expect([backendFor(""), backendFor("node"), backendFor("node-gpu")]).toEqual(["", "tensorflow", "tensorflow"]);
    // The worker reads that variable, knows both values, and auto tries tfjs-node-gpu first.
    const help = spawnSync(process.execPath, [repoPath("cli", "dist", "main.js"), "worker", "--help"], { encoding: "utf8" }).stdout;
    expect(help).toContain("--backend <auto|tensorflow|webgpu|wasm|cpu>");
    expect(help).toContain("auto tries the GPU first (@tensorflow/tfjs-node-gpu where installed, then webgpu");
    expect(help).toContain("(default auto; env TRAINFLEET_BACKEND)");
  });
});

describe("the Dockerfile's backend steps, run under stand-ins", () => {
  const npm = join(scratch, "npm-stand-in");
  recordingStandIns(npm, ["npm"]);
  const install = runStep(buildStage, "TFJS_BACKEND must be");
  const tfjsVersion = (JSON.parse(readFileSync(repoPath("worker", "package.json"), "utf8")) as { dependencies: Record<string, string> })
    .dependencies["@tensorflow/tfjs-core"];

  it("installs @tensorflow/tfjs-node-gpu of the repo's tfjs-core version into the worker for node-gpu, and nothing without a backend", () => {
    expect(run(install, npm, { TFJS_BACKEND: "node-gpu" })).toEqual({
      code: 0,
      stderr: "",
      calls: [`npm install --no-audit --no-fund --save-exact -w worker @tensorflow/tfjs-node-gpu@${tfjsVersion}`],
    });
    expect(run(install, npm, { TFJS_BACKEND: "" })).toEqual({ code: 0, stderr: "", calls: [] });
    const refused = run(install, npm, { TFJS_BACKEND: "cuda" });
    expect([refused.code, refused.stderr.trim(), refused.calls]).toEqual([
      1,
      "TFJS_BACKEND must be empty, node or node-gpu, not 'cuda'",
      [],
    ]);
  });

  it("installs a package the worker loads first and the image's /app keeps", () => {
    const backend = readFileSync(repoPath("worker", "src", "compute", "backend.ts"), "utf8");
    expect(/const NATIVE_GPU = "([^"]+)"/.exec(backend)?.[1]).toBe("@tensorflow/tfjs-node-gpu");
    const imageApp = readFileSync(repoPath("scripts", "lib", "image-app.mjs"), "utf8");
    expect(/const OPTIONAL_NATIVE = \[([^\]]*)\]/.exec(imageApp)?.[1]).toContain('"@tensorflow/tfjs-node-gpu"');
  });

  it("refuses a node-gpu final stage on a base without libcudart.so.11.0 or libcudnn.so.8, and checks nothing for the CPU image", () => {
    const standIns = join(scratch, "final-stand-ins");
    recordingStandIns(standIns, ["groupadd", "useradd", "node"]);
    // find / searches a fake root filesystem instead.
    const realFind = spawnSync("/bin/sh", ["-c", "command -v find"], { encoding: "utf8" }).stdout.trim();
    writeFileSync(join(standIns, "find"), `#!/bin/sh\nshift\nexec ${realFind} "$FAKE_ROOT" "$@"\n`);
    chmodSync(join(standIns, "find"), 0o755);
    const base = (name: string, libraries: string[]) => {
      const root = join(scratch, name);
      mkdirSync(join(root, "usr", "lib"), { recursive: true });
      for (const library of libraries) writeFileSync(join(root, "usr", "lib", library), "");
      return root;
    };
    const step = runStep(finalStage, "groupadd");
    const users = [
      "node --version",
      "groupadd --gid 65532 nonroot",
      "useradd --uid 65532 --gid 65532 --home-dir /home/nonroot --create-home --shell /usr/sbin/nologin nonroot",
    ];

    const cuda = base("cuda", ["libcudart.so.11.0", "libcudnn.so.8"]);
    expect(run(step, standIns, { TFJS_BACKEND: "node-gpu", FAKE_ROOT: cuda })).toEqual({ code: 0, stderr: "", calls: users });
    const noCudnn = run(step, standIns, { TFJS_BACKEND: "node-gpu", FAKE_ROOT: base("cuda-only", ["libcudart.so.11.0"]) });
    expect([noCudnn.code, noCudnn.stderr.trim(), noCudnn.calls]).toEqual([
      1,
      `TFJS_BACKEND=node-gpu needs CUDA 11 and cuDNN 8 in RUNTIME_IMAGE: libcudnn.so.8 is missing; use ${cudaRuntimeImage}`,
      [],
    ]);
    const slim = base("slim", []);
    expect(run(step, standIns, { TFJS_BACKEND: "node-gpu", FAKE_ROOT: slim }).stderr).toContain("libcudart.so.11.0 is missing");
    expect(run(step, standIns, { TFJS_BACKEND: "", FAKE_ROOT: slim })).toEqual({ code: 0, stderr: "", calls: users });
  });
});

describe("the GPU image's CUDA base", () => {
  it("is one CUDA 11 (>= 11.2) runtime with cuDNN 8 on Ubuntu 22.04, named alike by scripts/build-image.sh and the Dockerfile", () => {
    const match = /^nvidia\/cuda:11\.(\d+)\.\d+-cudnn8-runtime-ubuntu22\.04$/.exec(cudaRuntimeImage ?? "");
    expect(match, `cuda_runtime_image=${cudaRuntimeImage} in scripts/build-image.sh`).not.toBeNull();
    expect(Number(match![1])).toBeGreaterThanOrEqual(2);
    const named = new Set(readFileSync(repoPath("Dockerfile"), "utf8").match(/nvidia\/cuda:[\w.-]+/g));
    expect(named).toEqual(new Set([cudaRuntimeImage]));
    // The libraries the final stage looks for are that CUDA's and that cuDNN's sonames.
    expect(runStep(finalStage, "groupadd")).toContain("for lib in libcudart.so.11.0 libcudnn.so.8; do");
  });

  it("was chosen for the repo's tf.js version: tfjs-node-gpu 4.22.0 runs libtensorflow 2.9.1, built for CUDA 11.2 and cuDNN 8.1", () => {
    const worker = JSON.parse(readFileSync(repoPath("worker", "package.json"), "utf8")) as { dependencies: Record<string, string> };
    expect(
      worker.dependencies["@tensorflow/tfjs-core"],
      "tf.js changed: look up LIBTENSORFLOW_VERSION in the new @tensorflow/tfjs-node-gpu's scripts/deps-constants.js and the CUDA and cuDNN " +
        "that TensorFlow version was built with, then update cuda_runtime_image in scripts/build-image.sh, the Dockerfile and this test",
    ).toBe("4.22.0");
  });
});
