/**
 * What the container tests need beyond testcontainers itself: a Docker engine that
 * answers (or a failure saying how to start one), the test image built from this checkout,
 * a real SIGKILL, a container's exit code, and its log as JSON lines.
 */
import { execFile } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { Readable } from "node:stream";
import { getContainerRuntimeClient } from "testcontainers";
import type { StartedTestContainer } from "testcontainers";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

/** Ryuk (testcontainers' reaper) comes as an image of its own, which cannot be pulled here. */
export function disableRyuk(): void {
  process.env.TESTCONTAINERS_RYUK_DISABLED = "true";
}

/** Fails, saying how to fix it, unless a Docker engine answers. */
export async function requireDockerEngine(): Promise<void> {
  try {
    const client = await getContainerRuntimeClient();
    await client.container.dockerode.ping();
  } catch (error) {
    throw new Error(
      `no Docker engine answers (${error instanceof Error ? error.message : String(error)}). ` +
        "The container tests need one: run `bash scripts/start-dockerd.sh` as root (it installs Debian's docker.io if needed and starts dockerd), " +
        "or make `docker info` work for this user.",
    );
  }
}

/** Builds (or finds up to date) the image of this checkout's build: scripts/build-test-image.sh. */
export function buildTestImage(tag: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("bash", ["scripts/build-test-image.sh", "--quiet", "--tag", tag], { cwd: repoRoot, maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`scripts/build-test-image.sh failed: ${stderr.trim() || error.message}`));
      else resolve(stdout.trim());
    });
  });
}

async function dockerodeContainer(container: StartedTestContainer) {
  const client = await getContainerRuntimeClient();
  return client.container.getById(container.getId());
}

/** A real kill: the engine sends SIGKILL to the container's process. */
export async function killContainer(container: StartedTestContainer): Promise<void> {
  await (await dockerodeContainer(container)).kill({ signal: "SIGKILL" });
}

/** Waits until the container's process has exited on its own and returns its exit code. */
export async function exitCode(container: StartedTestContainer): Promise<number> {
  const result = (await (await dockerodeContainer(container)).wait()) as { StatusCode: number };
  return result.StatusCode;
}

/** The real, effective, saved and filesystem uid and gid of the container's main process, from /proc/1/status. */
export async function mainProcessIds(container: StartedTestContainer): Promise<{ uid: number[]; gid: number[] }> {
  const script = "process.stdout.write(require('fs').readFileSync('/proc/1/status', 'utf8'))";
  const { exitCode, output } = await container.exec(["node", "-e", script]);
  if (exitCode !== 0) throw new Error(`reading /proc/1/status in ${container.getName()} failed (${exitCode}): ${output}`);
  const ids = (field: string) => {
    const line = output.split("\n").find((l) => l.startsWith(`${field}:`));
    if (line === undefined) throw new Error(`no ${field} line in /proc/1/status of ${container.getName()}`);
    return line.slice(field.length + 1).trim().split(/\s+/).map(Number);
  };
  return { uid: ids("Uid"), gid: ids("Gid") };
}

export type LogLine = Record<string, unknown> & { msg?: string };

/**
 * A container's output as it arrives (pass `consume` to GenericContainer.withLogConsumer):
 * JSON lines parsed, anything else kept as { msg: text }. `ended` resolves when the
 * container's output ends (it stopped).
 */
export class ContainerLog {
  readonly lines: LogLine[] = [];
  readonly ended: Promise<void>;
  #end!: () => void;

  constructor(readonly name: string) {
    this.ended = new Promise((resolve) => (this.#end = resolve));
  }

  readonly consume = (stream: Readable): void => {
    const lines = createInterface({ input: stream, crlfDelay: Infinity });
    lines.on("line", (text) => {
      if (text.trim() === "") return;
      try {
        this.lines.push(JSON.parse(text) as LogLine);
      } catch {
        this.lines.push({ msg: text });
      }
    });
    lines.on("close", () => this.#end());
    stream.on("error", () => this.#end());
  };

  find(predicate: (line: LogLine) => boolean): LogLine | undefined {
    return this.lines.find(predicate);
  }

  /** The last lines, for a failure message. */
  tail(count = 20): string {
    return this.lines
      .slice(-count)
      .map((l) => JSON.stringify(l))
      .join("\n");
  }
}
