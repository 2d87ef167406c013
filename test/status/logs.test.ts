/**
 * The logs of a `trainfleet run`, as they stay in its job folder: every line of every
 * process is JSON, and every line says where it belongs once the process knows. The
 * coordinator's lines carry the jobId from the job's submission on, and the generation and
 * the completed steps from its start on; a worker's carry its jobId and workerId from its
 * registration on, and its rank, generation and step from its first rank on; a shard's
 * carry its jobId and psShard from its registration on, and its generation and version
 * (step) from its first generation on.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runFleet } from "@trainfleet/testing/fleet/run-fleet";
import { describe, expect, it } from "vitest";

type LogLine = Record<string, unknown> & { msg?: string };

/** From the line whose message is `marker` (the first one) on, the fields every later line must have. */
interface Rule {
  marker: string;
  fields: string[];
}

const rules: Array<[RegExp, Rule[]]> = [
  [
    /^coordinator\.log$/,
    [
      { marker: "job submitted", fields: ["jobId"] },
      { marker: "job started", fields: ["jobId", "generation", "step"] },
    ],
  ],
  [
    /^worker-\d+\.log$/,
    [
      { marker: "registered with the coordinator", fields: ["jobId", "workerId"] },
      { marker: "assigned a rank", fields: ["jobId", "workerId", "rank", "generation", "step"] },
    ],
  ],
  [
    /^ps-\d+\.log$/,
    [
      { marker: "registered with the coordinator", fields: ["jobId", "psShard"] },
      { marker: "shard configured", fields: ["jobId", "psShard", "generation", "step"] },
    ],
  ],
];

/** Every line of a log as JSON; a line that is not fails the test, named by file and line. */
function readLog(folder: string, file: string): LogLine[] {
  return readFileSync(join(folder, file), "utf8")
    .split("\n")
    .filter((text) => text !== "")
    .map((text, index) => {
      try {
        return JSON.parse(text) as LogLine;
      } catch {
        throw new Error(`${file} line ${index + 1} is not JSON: ${text}`);
      }
    });
}

/** What is missing after each rule's marker: "FILE line N (MSG): no FIELD". */
function missingFields(file: string, lines: LogLine[], fileRules: Rule[]): string[] {
  const problems: string[] = [];
  for (const { marker, fields } of fileRules) {
    const from = lines.findIndex((line) => line.msg === marker);
    if (from < 0) {
      problems.push(`${file}: no "${marker}" line`);
      continue;
    }
    lines.forEach((line, index) => {
      if (index <= from) return;
      for (const field of fields) if (line[field] === undefined) problems.push(`${file} line ${index + 1} (${line.msg}): no ${field}`);
    });
  }
  return problems;
}

describe("the job folder's logs", () => {
  it("are JSON lines that carry the job, member, generation and step they belong to", async () => {
    const fleet = await runFleet([
      "--workers",
      "2",
      "--shards",
      "1",
      "--hidden",
      "8",
      "--max-steps",
      "30",
      "--eval-samples",
      "100",
      "--backend",
      "cpu",
      "--log-level",
      "debug",
    ]);
    expect(fleet.code, fleet.output).toBe(0);
    const files = readdirSync(fleet.folder)
      .filter((name) => name.endsWith(".log"))
      .sort();
    expect(files).toEqual(["coordinator.log", "ps-0.log", "worker-0.log", "worker-1.log"]);
    const logs = new Map(files.map((file) => [file, readLog(fleet.folder, file)]));

    const problems = files.flatMap((file) => missingFields(file, logs.get(file)!, rules.find(([name]) => name.test(file))![1]));
    expect(problems).toEqual([]);

    // The values are the job's and the member's own.
    const coordinator = logs.get("coordinator.log")!;
    const jobId = coordinator.find((line) => line.msg === "job submitted")!["jobId"];
    expect(jobId).toEqual(expect.any(String));
    for (const [file, lines] of logs) {
      const registered = lines.find((line) => line.msg === "registered with the coordinator");
      for (const line of lines.filter((l) => l["jobId"] !== undefined)) expect(line["jobId"], `${file}: ${line.msg}`).toBe(jobId);
      if (file.startsWith("worker-"))
        for (const line of lines.filter((l) => l["workerId"] !== undefined))
          expect(line["workerId"], `${file}: ${line.msg}`).toBe(registered!["memberId"]);
      if (file.startsWith("ps-"))
        for (const line of lines.filter((l) => l["psShard"] !== undefined)) expect(line["psShard"], `${file}: ${line.msg}`).toBe(0);
    }
    // The coordinator's step is its completed steps: 30 by the time it evaluates.
    expect(coordinator.find((line) => line.msg === "evaluation complete")).toMatchObject({ generation: 1, step: 30 });
    // A worker's step is the step it runs, then the version it evaluates; a shard's is its version.
    for (const worker of ["worker-0.log", "worker-1.log"]) {
      const lines = logs.get(worker)!;
      expect(lines.filter((line) => line.msg === "step done").map((line) => line["step"])).toEqual(Array.from({ length: 30 }, (_, i) => i));
      expect(lines.find((line) => line.msg === "evaluated")).toMatchObject({ step: 30, version: 30, generation: 1 });
    }
    expect(logs.get("ps-0.log")!.find((line) => line.msg === "stopping")).toMatchObject({ generation: 1, step: 30, version: 30 });
  }, 180_000);

  it("carry a colocated shard's and its worker's fields, to the process's last line", async () => {
    const fleet = await runFleet([
      "--workers",
      "2",
      "--placement",
      "colocated",
      "--hidden",
      "8",
      "--max-steps",
      "20",
      "--eval-samples",
      "100",
      "--backend",
      "cpu",
      "--log-level",
      "debug",
    ]);
    expect(fleet.code, fleet.output).toBe(0);
    const problems = ["worker-0.log", "worker-1.log"].flatMap((file) => {
      const lines = readLog(fleet.folder, file);
      const shard = lines.find((line) => line.msg === "parameter-server shard listening")!["psShard"];
      // The worker's last word, whether its shard stopped before or after it.
      expect(lines.find((line) => line.msg === "told to stop")).toMatchObject({ psShard: shard, generation: 1, step: 20 });
      return missingFields(file, lines, [
        { marker: "parameter-server shard listening", fields: ["psShard"] },
        { marker: "registered with the coordinator", fields: ["jobId", "psShard"] },
        { marker: "assigned a rank", fields: ["jobId", "workerId", "psShard", "rank", "generation", "step"] },
      ]);
    });
    expect(problems).toEqual([]);
  }, 180_000);
});
