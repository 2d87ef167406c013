/**
 * An IDX image file and its IDX label file (Fashion-MNIST's, gzipped or not) as a record
 * table: one uint8 vector column "image" (rows x cols pixels) and a uint8 column "label".
 */
import { readFile } from "node:fs/promises";
import { Code, TrainfleetError } from "@trainfleet/proto";
import { parseIdx } from "../idx.js";
import type { RecordTable } from "./record-table.js";

export interface IdxInput {
  table: RecordTable;
  /** One image's shape with its single channel, e.g. [28, 28, 1]. */
  shape: number[];
}

export async function readIdx(imagesPath: string, labelsPath: string): Promise<IdxInput> {
  const images = parseIdx(await readFile(imagesPath), imagesPath);
  const labels = parseIdx(await readFile(labelsPath), labelsPath);
  const [records, ...sample] = images.dims;
  if (records === undefined || sample.length === 0)
    throw new TrainfleetError(
      Code.INVALID_ARGUMENT,
      `${imagesPath}: an IDX file of one dimension holds labels, not images; give it as --labels`,
    );
  if (labels.dims.length !== 1 || labels.dims[0] !== records) {
    throw new TrainfleetError(
      Code.INVALID_ARGUMENT,
      `${labelsPath}: holds ${labels.dims.join("x")} values, but ${imagesPath} has ${records} images; give the label file that belongs to the images`,
    );
  }
  const width = sample.reduce((a, b) => a * b, 1);
  return {
    table: {
      records,
      columns: [
        { name: "image", width, values: images.data },
        { name: "label", width: 1, values: labels.data },
      ],
    },
    shape: sample.length === 2 ? [...sample, 1] : sample,
  };
}
