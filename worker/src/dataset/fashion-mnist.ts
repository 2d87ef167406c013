/**
 * Loads real Fashion-MNIST from the first folder that holds all four files. The folders are
 * searched in the same order scripts/fetch-data.sh uses, so whatever `npm run fetch-data`
 * printed is what the worker finds. Environment values are passed in, never read here.
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { Code, TrainfleetError } from "@trainfleet/proto";
import { parseIdx } from "./idx.js";

export interface ImageSplit {
  count: number;
  rows: number;
  cols: number;
  /** count*rows*cols pixels, row-major, one byte each. */
  images: Uint8Array;
  labels: Uint8Array;
}

export interface ImageDataset {
  name: string;
  classes: number;
  train: ImageSplit;
  test: ImageSplit;
}

/** Where the Debian package dataset-fashion-mnist installs the files. */
export const SYSTEM_DATA_DIR = "/usr/share/datasets/fashion-mnist";

const CLASSES = 10;
const SIZE = 28;
const SPLITS = {
  train: { prefix: "train", count: 60000 },
  test: { prefix: "t10k", count: 10000 },
} as const;
const FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"];

/**
 * Candidate folders: an explicit dir alone (a user who names a folder means that one, and a
 * fallback would hide their mistake); otherwise the Debian package's dir, then the
 * fetch-data cache.
 */
export function defaultDataDirs(env: {
  dataDir?: string | undefined;
  cacheHome?: string | undefined;
  home?: string | undefined;
}): string[] {
  if (env.dataDir) return [env.dataDir];
  const dirs: string[] = [SYSTEM_DATA_DIR];
  // Same rule as the script's ${XDG_CACHE_HOME:-$HOME/.cache}: an empty value counts as unset.
  const cacheHome = env.cacheHome || (env.home ? join(env.home, ".cache") : undefined);
  if (cacheHome) dirs.push(join(cacheHome, "trainfleet", "fashion-mnist"));
  return [...new Set(dirs)];
}

async function missingFiles(dir: string): Promise<string[]> {
  const present = await Promise.all(
    FILES.map((f) =>
      stat(join(dir, f)).then(
        (s) => s.isFile(),
        () => false,
      ),
    ),
  );
  return FILES.filter((_, i) => !present[i]);
}

function dataLoss(path: string, problem: string): TrainfleetError {
  return new TrainfleetError(
    Code.DATA_LOSS,
    `${path}: ${problem}. This is not the real Fashion-MNIST file: re-run \`npm run fetch-data\`, or replace the folder's files.`,
  );
}

async function loadSplit(dir: string, split: keyof typeof SPLITS): Promise<ImageSplit> {
  const { prefix, count } = SPLITS[split];
  const imagesPath = join(dir, `${prefix}-images-idx3-ubyte.gz`);
  const labelsPath = join(dir, `${prefix}-labels-idx1-ubyte.gz`);
  const images = parseIdx(await readFile(imagesPath), imagesPath);
  const labels = parseIdx(await readFile(labelsPath), labelsPath);
  const [n, rows, cols] = images.dims;
  if (images.dims.length !== 3 || rows !== SIZE || cols !== SIZE) {
    throw dataLoss(imagesPath, `expected ${count}x${SIZE}x${SIZE} images, found dimensions ${images.dims.join("x")}`);
  }
  if (n !== count) throw dataLoss(imagesPath, `expected ${count} images, found ${n}`);
  if (labels.dims.length !== 1) throw dataLoss(labelsPath, `expected one dimension of labels, found ${labels.dims.join("x")}`);
  if (labels.dims[0] !== n) throw dataLoss(labelsPath, `has ${labels.dims[0]} labels but ${imagesPath} has ${n} images`);
  const bad = labels.data.findIndex((label) => label >= CLASSES);
  if (bad >= 0) throw dataLoss(labelsPath, `label ${labels.data[bad]} at index ${bad} is not a class 0..${CLASSES - 1}`);
  return { count, rows, cols, images: images.data, labels: labels.data };
}

/** The first candidate folder that holds all four files, or an error that says how to get them. */
export async function locateFashionMnist(candidates: string[]): Promise<string> {
  const searched: string[] = [];
  for (const dir of candidates) {
    const missing = await missingFiles(dir);
    if (missing.length === 0) return dir;
    searched.push(`  ${dir} (missing ${missing.length === FILES.length ? "all four files" : missing.join(", ")})`);
  }
  throw new TrainfleetError(
    Code.FAILED_PRECONDITION,
    `Fashion-MNIST not found. Searched:\n${searched.join("\n")}\n` +
      "Fix: run `npm run fetch-data` (no root needed), or `sudo apt-get install dataset-fashion-mnist`, " +
      `or put ${FILES.join(", ")} in a folder and pass --data-dir <folder> or set TRAINFLEET_DATA_DIR.`,
  );
}

/** Loads both splits from the first complete candidate folder. */
export async function loadFashionMnist(candidates: string[]): Promise<ImageDataset> {
  const dir = await locateFashionMnist(candidates);
  return { name: "fashion-mnist", classes: CLASSES, train: await loadSplit(dir, "train"), test: await loadSplit(dir, "test") };
}
