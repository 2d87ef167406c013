/**
 * What a job's data looks like to the model and the sample ledger: one sample's features,
 * its label, and how many records each split holds. A built-in dataset's shape is known
 * here; a sharded dataset's is read from its manifests once, when the job is resolved, and
 * pinned in spec.dataset.facts, so every role derives the same shape without reading them.
 */
import type { DatasetSpec } from "@trainfleet/proto";
import { Code, invalidField, TrainfleetError } from "@trainfleet/proto";

export interface DataShape {
  /** One sample's features, e.g. [28, 28, 1] (height, width, channels) or [13]. */
  featureShape: number[];
  /** Classification: the class count (labels are class indices). 0: regression. */
  classes: number;
  /** Regression: values per label. 0 for classification. */
  labelSize: number;
  trainRecords: number;
  evalRecords: number;
}

const builtInDatasets: Record<string, DataShape> = {
  "fashion-mnist": { featureShape: [28, 28, 1], classes: 10, labelSize: 0, trainRecords: 60_000, evalRecords: 10_000 },
};

/** `dataset`: a spec.dataset, or its name and manifest alone (`{ name: "fashion-mnist", manifest: "" }`). */
export function dataShape(dataset: Pick<DatasetSpec, "name" | "manifest" | "facts">): DataShape {
  if (dataset.manifest === "") {
    const shape = builtInDatasets[dataset.name];
    if (shape === undefined) {
      throw invalidField(
        "spec.dataset.name",
        `unknown dataset "${dataset.name}"; built in: ${Object.keys(builtInDatasets).join(", ")}; or give spec.dataset.manifest (a dataset.json)`,
      );
    }
    return { ...shape, featureShape: [...shape.featureShape] };
  }
  const facts = dataset.facts;
  if (facts === undefined || facts.digest === "") {
    throw new TrainfleetError(
      Code.FAILED_PRECONDITION,
      `spec.dataset.facts: the manifest ${dataset.manifest} has not been read yet; trainfleet run, submit and coordinator read it when they resolve the job`,
    );
  }
  return {
    featureShape: [...facts.featureShape],
    classes: facts.classes,
    labelSize: facts.labelSize,
    trainRecords: facts.trainRecords,
    evalRecords: facts.evalRecords,
  };
}

/** Values in one sample's features. */
export function featureSize(shape: DataShape): number {
  return shape.featureShape.reduce((a, b) => a * b, 1);
}
