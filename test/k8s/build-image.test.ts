/**
 * scripts/build-image.sh (`npm run image`), the documented way to build the trainfleet image and
 * push it to a registry. Nothing can be pulled here (the Dockerfile starts FROM node:22-bookworm)
 * and there is no registry to push to, so it runs against a stand-in `docker` first on PATH that
 * records each call's arguments and working directory and answers as the real CLI does (or
 * fails as it does: no engine, a failed build, a refused push). Checked: the arguments it gives
 * docker for the CPU and the GPU image, the digest it prints, and each error, which names what
 * to do.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoPath, repoRoot } from "@trainfleet/testing/manifests";
import { afterAll, beforeEach, describe, expect, it } from "vitest";

const scratch = mkdtempSync(join(tmpdir(), "trainfleet-build-image-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const tag = "registry.example.com/team/trainfleet:0.1.0";
const imageId = `sha256:${"1".repeat(64)}`;
const pushedDigest = `sha256:${"a".repeat(64)}`;
const cudaBase = "nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04";

/** The stand-in docker: records {args, cwd} as a JSON line, and answers as $FAKE_DOCKER_* say. */
const fakeDocker = `#!${process.execPath}
const { appendFileSync } = require("node:fs");
const args = process.argv.slice(2);
appendFileSync(process.env.FAKE_DOCKER_LOG, JSON.stringify({ args, cwd: process.cwd() }) + "\\n");
const fail = process.env.FAKE_DOCKER_FAIL;
const out = (text) => process.stdout.write(text + "\\n");
const err = (text) => process.stderr.write(text + "\\n");
switch (args[0]) {
  case "info":
    if (fail === "info") {
      err("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?");
      process.exit(1);
    }
    out("Server Version: 27.5.1");
    break;
  case "build":
    out("#1 [internal] load build definition from Dockerfile");
    if (fail === "build") {
      err("ERROR: failed to solve: node:22-bookworm: failed to resolve source metadata");
      process.exit(1);
    }
    out("#20 naming to " + args[args.indexOf("--tag") + 1] + " done");
    break;
  case "image":
    if (args.includes("{{.Id}}")) out("${imageId}");
    else process.stdout.write(process.env.FAKE_DOCKER_REPO_DIGESTS ?? "");
    break;
  case "push":
    out("The push refers to repository [" + args[1].replace(/:[^:/]*$/, "") + "]");
    if (fail === "push") {
      err("denied: requested access to the resource is denied");
      process.exit(1);
    }
    out("5f70bf18a086: Pushed");
    if (process.env.FAKE_DOCKER_PUSH_DIGEST !== "none") out(args[1].replace(/^.*:/, "") + ": digest: ${pushedDigest} size: 2415");
    break;
  default:
    err("fake docker: unexpected command " + args[0]);
    process.exit(64);
}
`;
const dockerDir = join(scratch, "bin");
mkdirSync(dockerDir);
writeFileSync(join(dockerDir, "docker"), fakeDocker);
chmodSync(join(dockerDir, "docker"), 0o755);

let log = "";
let calls = 0;
beforeEach(() => {
  log = join(scratch, `calls-${++calls}.jsonl`);
  writeFileSync(log, "");
});

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Each docker call's arguments, in order. */
  docker: string[][];
}

function buildImage(args: string[], env: Record<string, string> = {}, command = ["bash", repoPath("scripts", "build-image.sh")]): Result {
  const result = spawnSync(command[0]!, [...command.slice(1), ...args], {
    cwd: scratch,
    encoding: "utf8",
    env: { PATH: `${dockerDir}:${process.env.PATH}`, FAKE_DOCKER_LOG: log, HOME: scratch, ...env },
    timeout: 60_000,
  });
  const recorded = readFileSync(log, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { args: string[]; cwd: string });
  // Docker builds the checkout, wherever the script was started from.
  for (const call of recorded) expect(call.cwd).toBe(repoRoot);
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, docker: recorded.map((call) => call.args) };
}

describe("scripts/build-image.sh against a stand-in docker", () => {
  it("builds the CPU image from the Dockerfile with the tag given, and prints the local image ID when not pushing", () => {
    const result = buildImage(["--tag", tag]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.docker).toEqual([
      ["info"],
      ["build", "--file", "Dockerfile", "--tag", tag, "."],
      ["image", "inspect", "--format", "{{.Id}}", tag],
    ]);
    // docker's own output goes to stderr: stdout is the digest alone, for scripts.
    expect(result.stdout).toBe(`${imageId}\n`);
    expect(result.stderr).toContain("#20 naming to registry.example.com/team/trainfleet:0.1.0 done");
    expect(result.stderr).toContain(
      `build-image: built ${tag} (image ${imageId}); not pushed: run again with --push to send it to registry.example.com`,
    );
  });

  it("builds the GPU image on the CUDA base for the platform given, pushes it, and prints the digest the registry stores it under", () => {
    const gpuTag = "registry.example.com/team/trainfleet:0.1.0-gpu";
    const result = buildImage([`--tag=${gpuTag}`, "--gpu", "--push", "--platform", "linux/amd64"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.docker).toEqual([
      ["info"],
      [
        "build",
        "--file",
        "Dockerfile",
        "--tag",
        gpuTag,
        "--platform",
        "linux/amd64",
        "--build-arg",
        "TFJS_BACKEND=node-gpu",
        "--build-arg",
        `RUNTIME_IMAGE=${cudaBase}`,
        ".",
      ],
      ["image", "inspect", "--format", "{{.Id}}", gpuTag],
      ["push", gpuTag],
    ]);
    expect(result.stdout).toBe(`registry.example.com/team/trainfleet@${pushedDigest}\n`);
    expect(result.stderr).toContain(`build-image: pushed ${gpuTag}: pin it as registry.example.com/team/trainfleet@${pushedDigest}`);
  });

  it("takes the digest from the image's RepoDigests, for its own repository, when docker push prints none", () => {
    const result = buildImage(["--tag", "localhost:5000/trainfleet:dev", "--push"], {
      FAKE_DOCKER_PUSH_DIGEST: "none",
      FAKE_DOCKER_REPO_DIGESTS: `registry.example.com/team/trainfleet@sha256:${"b".repeat(64)}\nlocalhost:5000/trainfleet@sha256:${"c".repeat(64)}\n`,
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.docker.at(-1)).toEqual([
      "image",
      "inspect",
      "--format",
      "{{range .RepoDigests}}{{println .}}{{end}}",
      "localhost:5000/trainfleet:dev",
    ]);
    expect(result.stdout).toBe(`localhost:5000/trainfleet@sha256:${"c".repeat(64)}\n`);
  });

  it("is what `npm run image` runs, with the arguments after --", () => {
    const result = buildImage(["run", "--silent", "image", "--", "--tag", tag, "--push"], {}, ["npm", "--prefix", repoRoot]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.docker.map((args) => args[0])).toEqual(["info", "build", "image", "push"]);
    expect(result.stdout.trim().split("\n").at(-1)).toBe(`registry.example.com/team/trainfleet@${pushedDigest}`);
  });

  it("prints its usage with --help and runs nothing", () => {
    const result = buildImage(["--help"]);
    expect([result.code, result.docker]).toEqual([0, []]);
    expect(result.stdout).toContain("usage: npm run image -- --tag REGISTRY/REPOSITORY:TAG [--push] [--gpu] [--platform OS/ARCH]");
    expect(result.stdout).toContain(`--gpu              the GPU image: @tensorflow/tfjs-node-gpu on ${cudaBase}`);
  });
});

describe("scripts/build-image.sh's errors", () => {
  it.each([
    [
      "no --tag",
      [],
      "build-image: --tag is required: the image's name in the registry you push to, e.g. --tag registry.example.com/team/trainfleet:0.1.0 (see --help)",
    ],
    ["--tag without its value", ["--tag"], "build-image: --tag needs a value (see --help)"],
    ["--tag followed by a flag", ["--tag", "--push"], "build-image: --tag needs a value (see --help)"],
    [
      "a tag without a version",
      ["--tag", "registry.example.com/team/trainfleet"],
      "build-image: --tag 'registry.example.com/team/trainfleet' is not REGISTRY/REPOSITORY:TAG: the repository in lower case and a tag after ':' (letters, digits, '_', '.', '-'), e.g. registry.example.com/team/trainfleet:0.1.0 (see --help)",
    ],
    ["a repository in capitals", ["--tag", "registry.example.com/Team/trainfleet:0.1.0"], "is not REGISTRY/REPOSITORY:TAG"],
    [
      "a platform that is no OS/ARCH",
      ["--tag", tag, "--platform", "amd64"],
      "build-image: --platform 'amd64' is not OS/ARCH[/VARIANT], e.g. linux/amd64 (see --help)",
    ],
    ["an unknown flag", ["--tag", tag, "--gpus"], "build-image: unknown argument '--gpus' (see --help)"],
  ])("refuses %s with exit 2, before calling docker", (_, args, message) => {
    const result = buildImage(args);
    expect([result.code, result.docker, result.stdout]).toEqual([2, [], ""]);
    expect(result.stderr).toContain(message);
  });

  it("says how to get docker when there is none on PATH", () => {
    // A PATH with the tools the script uses before it looks for docker, and no docker.
    const tools = join(scratch, "no-docker");
    mkdirSync(tools, { recursive: true });
    const dirnamePath = spawnSync("/bin/sh", ["-c", "command -v dirname"], { encoding: "utf8" }).stdout.trim();
    symlinkSync(dirnamePath, join(tools, "dirname"));
    const bash = spawnSync("/bin/sh", ["-c", "command -v bash"], { encoding: "utf8" }).stdout.trim();
    const result = buildImage(["--tag", tag], { PATH: tools }, [bash, repoPath("scripts", "build-image.sh")]);
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe(
      "build-image: docker is not installed (no 'docker' on PATH): install Docker Engine or Docker Desktop (https://docs.docker.com/get-docker/), then run this again",
    );
  });

  it("says to start Docker when no engine answers, quoting docker", () => {
    const result = buildImage(["--tag", tag], { FAKE_DOCKER_FAIL: "info" });
    expect([result.code, result.docker]).toEqual([1, [["info"]]]);
    expect(result.stderr.trim()).toBe(
      "build-image: no Docker engine answers ('docker info' failed: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?): start Docker (Docker Desktop, or 'sudo systemctl start docker'), or set DOCKER_HOST",
    );
  });

  it("stops after a failed build, with docker's output above its own line, and pushes nothing", () => {
    const result = buildImage(["--tag", tag, "--push"], { FAKE_DOCKER_FAIL: "build" });
    expect([result.code, result.docker.map((args) => args[0]), result.stdout]).toEqual([1, ["info", "build"], ""]);
    expect(result.stderr).toMatch(/ERROR: failed to solve: .*\nbuild-image: docker build failed \(exit 1\); its output is above\n$/);
  });

  it.each([
    [tag, "registry.example.com"],
    ["team/trainfleet:0.1.0", "docker.io"],
  ])("names the registry that refused the push of %s and how to log in to it", (refusedTag, registry) => {
    const result = buildImage(["--tag", refusedTag, "--push"], { FAKE_DOCKER_FAIL: "push" });
    expect([result.code, result.docker.at(-1), result.stdout]).toEqual([1, ["push", refusedTag], ""]);
    expect(result.stderr.trim().split("\n").at(-1)).toBe(
      `build-image: ${registry} refused the push of ${refusedTag} (docker push exit 1: denied: requested access to the resource is denied): log in first ('docker login ${registry}'), and check that the repository exists there and that you may push to it`,
    );
  });
});
