/**
 * A `trainfleet run` job outlives its processes' first certificates (issue 14, rotation), with
 * real processes: each certificate lives 5 seconds (--member-certificate-seconds), the run
 * renews every one of them in the job folder's tls/ at 2/3 of its life, and every process
 * reloads its files (a tenth of the life, 0.5 s) and switches without a restart; the job goes on
 * past the first certificates' end. The job succeeds with exactly the parameters of the single-process
 * per-rank reference (renewals change who may talk, not what is computed), and no process
 * refused a renewed set or found its certificate expired.
 */
import { X509Certificate } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { JsonValue } from "@bufbuild/protobuf";
import { create, fromJson } from "@bufbuild/protobuf";
import { DatasetSpecSchema, JobSpecSchema } from "@trainfleet/proto";
import { silentLogger } from "@trainfleet/runtime";
import { firstDifference } from "@trainfleet/testing/fleet/compare-parameters";
import { perRankReference } from "@trainfleet/testing/fleet/reference-training";
import { runFleet } from "@trainfleet/testing/fleet/run-fleet";
import { defaultDataDirs, openTrainingData, selectBackend } from "@trainfleet/worker";
import { describe, expect, it } from "vitest";

// Enough steps that the job outlives its first certificates on a fast, idle machine too
// (about 25 ms a step there: 10 s, two lives), since every assertion below needs that.
const steps = 400;
const workers = 2;
const flags = ["--job-id", "rotation", "--workers", String(workers), "--shards", "1", "--hidden", "16", "--batch-size", "16"];
const more = ["--max-steps", String(steps), "--eval-samples", "100", "--backend", "cpu", "--seed", "7"];
const lifeSeconds = 5;

describe("a trainfleet run whose certificates live a few seconds", () => {
  it("renews them in tls/, every process switches to each renewal, and the job ends bitwise equal to the per-rank reference", async () => {
    const fleet = await runFleet([...flags, ...more, "--member-certificate-seconds", String(lifeSeconds)]);
    expect(fleet.code, fleet.output).toBe(0);
    expect(fleet.description.version).toBe(steps);

    const logs = readdirSync(fleet.folder).filter((name) => name.endsWith(".log"));
    expect(logs.sort()).toEqual(["coordinator.log", "ps-0.log", "worker-0.log", "worker-1.log"]);
    const tls = join(fleet.folder, "tls");
    // The first certificates were issued with the CA, which is written once: they ended `lifeSeconds` after it at the latest.
    const firstEnd = statSync(join(tls, "ca.pem")).mtimeMs + lifeSeconds * 1000;
    const logTime = (line: string | undefined) => (JSON.parse(line ?? "{}") as { time?: number }).time ?? 0;
    for (const log of logs) {
      const name = log.replace(/\.log$/, "");
      const lines = readFileSync(join(fleet.folder, log), "utf8").split("\n");
      expect(lines.filter((line) => line.includes('"msg":"TLS credentials reloaded from')).length, log).toBeGreaterThanOrEqual(1);
      expect(
        lines.filter((line) => /refused|has expired/.test(line)),
        log,
      ).toEqual([]);
      // The files now hold a renewed certificate (not the first, issued with the CA), still the owner's only.
      const certificate = new X509Certificate(readFileSync(join(tls, `${name}.pem`)));
      expect(Date.parse(certificate.validFrom), name).toBeGreaterThan(firstEnd - lifeSeconds * 1000);
      for (const file of [`${name}.pem`, `${name}-key.pem`]) expect(statSync(join(tls, file)).mode & 0o777, file).toBe(0o600);
    }
    // The job went on past the first certificates' end: its last connections (the coordinator pulling the trained parameters) came after.
    const coordinatorLines = readFileSync(join(fleet.folder, "coordinator.log"), "utf8").split("\n");
    expect(logTime(coordinatorLines.find((line) => line.includes('"msg":"trained model written"')))).toBeGreaterThan(firstEnd);
    // Every temporary file was renamed into place; the CA's key never written.
    expect(readdirSync(tls).sort()).toEqual(
      ["ca.pem", "coordinator", "ps-0", "worker-0", "worker-1"].flatMap((name) =>
        name === "ca.pem" ? [name] : [`${name}-key.pem`, `${name}.pem`],
      ),
    );

    await selectBackend("cpu", silentLogger);
    const dataset = await openTrainingData(create(DatasetSpecSchema, { name: "fashion-mnist" }), {
      dataDirs: defaultDataDirs({
        dataDir: process.env.TRAINFLEET_DATA_DIR,
        cacheHome: process.env.XDG_CACHE_HOME,
        home: process.env.HOME,
      }),
    });
    const spec = fromJson(JobSpecSchema, JSON.parse(readFileSync(join(fleet.folder, "spec.json"), "utf8")) as JsonValue);
    expect(firstDifference(fleet.parameters, await perRankReference(spec, dataset, workers, steps))).toBe(-1);
  }, 180_000);
});
