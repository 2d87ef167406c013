/**
 * `npm run bench:dataset-reads`: how much of a sharded dataset each worker reads in an
 * epoch, with the global shuffle against the block shuffle. Fashion-MNIST's real IDX files
 * are converted (trainfleet's own converter) to Parquet shards of 15 blocks of 1024
 * records; then one epoch is trained by N = 1, 2 and 4 workers (the same global batch, so
 * the same steps) with `--shuffle global` and `--shuffle block`, one sitting after the
 * other. Each worker logs the training bytes it read (`trainBytesRead` on its "evaluated"
 * line), printed here as a fraction of the training shards' bytes, beside the job's wall
 * time and test accuracy. Workers keep the default block cache (64 MiB of decoded blocks):
 * the question is which blocks a worker touches at all, and how often it must read them
 * again. With block shuffle each of N workers should read about 1/N; with the global
 * shuffle each reads all of it, and more where its cache cannot hold every block.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { runFleet } from "@trainfleet/testing/fleet/run-fleet";
import { convertDataset } from "@trainfleet/worker/dataset";

const { values } = parseArgs({
  options: {
    workers: { type: "string", default: "1,2,4" },
    shuffles: { type: "string", default: "global,block" },
    "global-batch": { type: "string", default: "128" },
  },
});
const workerCounts = values.workers.split(",").map(Number);
const shuffles = values.shuffles.split(",");
const globalBatch = Number(values["global-batch"]);
const recordsPerBlock = 1024;
// Whole blocks per file, so the windows of block shuffle (global index / 1024) are the blocks.
const recordsPerFile = 15 * recordsPerBlock;

function dataDir(): string {
  const result = spawnSync("bash", [fileURLToPath(new URL("../../scripts/fetch-data.sh", import.meta.url)), "--quiet"], {
    encoding: "utf8",
  });
  if (result.status !== 0) throw new Error(`fetch-data failed: ${result.stderr}`);
  return result.stdout.trim();
}

interface Sitting {
  workers: number;
  shuffle: string;
  /** Each worker's training bytes read, by rank. */
  bytesRead: number[];
  wallSeconds: number;
  accuracy: number;
}

async function sitting(workers: number, shuffle: string, manifest: string, evalManifest: string): Promise<Sitting> {
  if (globalBatch % workers !== 0) throw new Error(`--global-batch ${globalBatch} is not a multiple of ${workers} workers`);
  const { code, output, folder } = await runFleet(
    [
      ...["--dataset", manifest, "--eval-dataset", evalManifest, "--shuffle", shuffle],
      ...["--workers", String(workers), "--batch-size", String(globalBatch / workers), "--epochs", "1"],
    ],
    Infinity,
  );
  if (code !== 0) throw new Error(`trainfleet run (${workers} workers, ${shuffle}) exited with ${code}; logs in ${folder}:\n${output}`);
  const evaluated = readdirSync(folder)
    .filter((name) => /^worker-\d+\.log$/.test(name))
    .flatMap((name) =>
      readFileSync(join(folder, name), "utf8")
        .split("\n")
        .filter((line) => line.includes('"msg":"evaluated"'))
        .map((line) => JSON.parse(line) as { rank: number; trainBytesRead: number }),
    )
    .sort((a, b) => a.rank - b.rank);
  if (evaluated.length !== workers) throw new Error(`expected ${workers} "evaluated" lines in ${folder}, found ${evaluated.length}`);
  const summary = /test accuracy ([\d.]+)% .*\(([\d.]+) s\)/.exec(output);
  if (summary === null) throw new Error(`no accuracy and wall time in the output of trainfleet run:\n${output}`);
  await rm(folder, { recursive: true, force: true });
  return {
    workers,
    shuffle,
    bytesRead: evaluated.map((line) => line.trainBytesRead),
    accuracy: Number(summary[1]),
    wallSeconds: Number(summary[2]),
  };
}

const data = dataDir();
const out = mkdtempSync(join(tmpdir(), "trainfleet-bench-reads-"));
const converted = await convertDataset({
  input: join(data, "train-images-idx3-ubyte.gz"),
  labels: join(data, "train-labels-idx1-ubyte.gz"),
  testInput: join(data, "t10k-images-idx3-ubyte.gz"),
  testLabels: join(data, "t10k-labels-idx1-ubyte.gz"),
  out,
  fileFormat: "parquet",
  recordsPerFile,
  recordsPerBlock,
});
const trainManifest = JSON.parse(readFileSync(converted.train.path, "utf8")) as { files: Array<{ bytes: number; blocks: unknown[] }> };
const trainBytes = trainManifest.files.reduce((sum, file) => sum + file.bytes, 0);
const blocks = trainManifest.files.reduce((sum, file) => sum + file.blocks.length, 0);
console.log(
  `trainfleet dataset reads: Fashion-MNIST as Parquet, ${converted.train.records} training records in ${trainManifest.files.length} files of ${blocks} blocks of ${recordsPerBlock} records (${(trainBytes / 2 ** 20).toFixed(1)} MiB); one epoch, global batch ${globalBatch}, default worker cache (64 MiB)`,
);

const sittings: Sitting[] = [];
for (const workers of workerCounts) {
  for (const shuffle of shuffles) {
    const result = await sitting(workers, shuffle, converted.train.path, converted.evaluation!.path);
    sittings.push(result);
    console.error(`done: ${workers} workers, ${shuffle}: ${result.bytesRead.map((bytes) => (bytes / trainBytes).toFixed(3)).join(", ")}`);
  }
}
await rm(out, { recursive: true, force: true });

console.log("");
console.log(
  "| workers | shuffle | training bytes read per worker (of the dataset's) | mean per worker | ideal 1/N | wall time | test accuracy |",
);
console.log("|---|---|---|---|---|---|---|");
for (const s of sittings) {
  const fractions = s.bytesRead.map((bytes) => bytes / trainBytes);
  const mean = fractions.reduce((a, b) => a + b, 0) / fractions.length;
  console.log(
    `| ${s.workers} | ${s.shuffle} | ${fractions.map((f) => f.toFixed(3)).join(", ")} | ${mean.toFixed(3)} | ${(1 / s.workers).toFixed(3)} | ${s.wallSeconds.toFixed(1)} s | ${s.accuracy.toFixed(2)}% |`,
  );
}
