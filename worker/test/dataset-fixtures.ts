/** What the dataset tests share: the real scikit-learn digits file, read independently of the converter. */
import { readFile } from "node:fs/promises";
import { gunzipSync } from "node:zlib";
import { defaultSklearnDataDirs, locateSklearnFile } from "../src/dataset/sklearn-data.js";

/** digits.csv.gz from scripts/fetch-sklearn-data.sh: fails, saying to run it, when absent. */
export async function digitsPath(): Promise<string> {
  return locateSklearnFile(
    "digits.csv.gz",
    defaultSklearnDataDirs({
      dataDir: process.env.TRAINFLEET_SKLEARN_DATA_DIR,
      cacheHome: process.env.XDG_CACHE_HOME,
      home: process.env.HOME,
    }),
  );
}

/** The digits rows as numbers: 64 pixels (0..16) then the digit. */
export async function digitsRows(): Promise<number[][]> {
  const text = gunzipSync(await readFile(await digitsPath())).toString("utf8");
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => line.split(",").map(Number));
}
