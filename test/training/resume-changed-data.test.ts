/**
 * A job pins its dataset's manifest digest into its spec, and so into its checkpoints:
 * `trainfleet run --resume` of a job whose data changed since (here converted again with
 * other blocks) stops before anything starts, naming the manifest and both digests, rather
 * than continuing a ledger over records that are no longer the ones it counted.
 */
import { readdirSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256Hex } from "@trainfleet/artifacts";
import { digitsCsvPath } from "@trainfleet/testing/fixtures/digits-dataset";
import { runFleet, trainfleet } from "@trainfleet/testing/fleet/run-fleet";
import { convertDataset } from "@trainfleet/worker/dataset";
import { afterAll, expect, it } from "vitest";

let dir: string | undefined;
afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

it("refuses to resume a job on a dataset that changed since its checkpoint, before starting anything", async () => {
  dir = await mkdtemp(join(tmpdir(), "resume-changed-"));
  const convert = async (recordsPerBlock: number) =>
    convertDataset({
      input: await digitsCsvPath(),
      recordsPerFile: 600,
      recordsPerBlock,
      scale: 1 / 16,
      fileFormat: "parquet",
      out: join(dir!, "digits"),
    });
  const manifest = (await convert(100)).train.path;
  const pinned = sha256Hex(await readFile(manifest));
  const fleet = await runFleet([
    ...["--job-id", "changed-data", "--dataset", manifest, "--hidden", "16", "--workers", "2", "--batch-size", "16"],
    ...["--max-steps", "20", "--checkpoint-every", "10", "--eval-samples", "50", "--backend", "cpu"],
  ]);
  expect(fleet.code, fleet.output).toBe(0);

  // The same records, written again in blocks of 50: another manifest.
  await convert(50);
  const now = sha256Hex(await readFile(manifest));
  expect(now).not.toBe(pinned);
  const before = readdirSync(fleet.folder).sort();
  const resumed = await trainfleet(["run", "--resume", fleet.folder]);
  expect(resumed.code, resumed.output).toBe(1);
  expect(resumed.stderr).toContain(
    `trainfleet: spec.dataset: the dataset manifest ${manifest} changed since the job was pinned to it (sha256 ${pinned.slice(0, 12)}..., now ${now.slice(0, 12)}...)`,
  );
  expect(resumed.stderr).toContain("restore them, or start a new job (FAILED_PRECONDITION)");
  // Nothing started: no process, no log.
  expect(readdirSync(fleet.folder).sort()).toEqual(before);
}, 120_000);
