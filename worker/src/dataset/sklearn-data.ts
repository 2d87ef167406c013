/**
 * Where scikit-learn's bundled CSVs (digits, wine, iris, breast cancer) are found: the same
 * folders, in the same order, that scripts/fetch-sklearn-data.sh uses. Environment values
 * are passed in, never read here.
 */
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { Code, TrainfleetError } from "@trainfleet/proto";

/** Where Debian's python3-sklearn installs them. */
export const SKLEARN_SYSTEM_DIR = "/usr/lib/python3/dist-packages/sklearn/datasets/data";

export function defaultSklearnDataDirs(env: {
  dataDir?: string | undefined;
  cacheHome?: string | undefined;
  home?: string | undefined;
}): string[] {
  if (env.dataDir) return [env.dataDir];
  const cacheHome = env.cacheHome || (env.home ? join(env.home, ".cache") : undefined);
  return cacheHome === undefined ? [SKLEARN_SYSTEM_DIR] : [SKLEARN_SYSTEM_DIR, join(cacheHome, "trainfleet", "sklearn")];
}

/** The path of `file` (e.g. digits.csv.gz) in the first folder that has it, or an error that says how to get it. */
export async function locateSklearnFile(file: string, candidates: string[]): Promise<string> {
  for (const dir of candidates) {
    const found = await stat(join(dir, file)).then(
      (s) => s.isFile() && s.size > 0,
      () => false,
    );
    if (found) return join(dir, file);
  }
  throw new TrainfleetError(
    Code.FAILED_PRECONDITION,
    `${file} (scikit-learn's sample data) not found in ${candidates.join(", ")}. ` +
      "Fix: run scripts/fetch-sklearn-data.sh (no root needed), or `sudo apt-get install python3-sklearn`, or set TRAINFLEET_SKLEARN_DATA_DIR",
  );
}
