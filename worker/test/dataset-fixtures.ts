/** What the dataset tests share: the real scikit-learn digits file, read independently of the converter. */
import { readFile } from "node:fs/promises";
import { gunzipSync } from "node:zlib";
import { digitsCsvPath } from "@trainfleet/testing/fixtures/digits-dataset";

/** The digits rows as numbers: 64 pixels (0..16) then the digit. */
export async function digitsRows(): Promise<number[][]> {
  const text = gunzipSync(await readFile(await digitsCsvPath())).toString("utf8");
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => line.split(",").map(Number));
}
