/**
 * The records a job trains on, opened once per dataset: a new generation, or a new session
 * with the same coordinator, keeps them (and their cache of decoded blocks).
 */
import type { SourceOptions } from "@trainfleet/artifacts";
import type { DatasetSpec } from "@trainfleet/proto";
import type { TrainingData } from "./dataset/record-set.js";
import { openTrainingData } from "./dataset/training-data.js";
import { workerFailure } from "./worker-failure.js";

export interface JobDataOptions {
  /** Folders searched for the built-in dataset. */
  dataDirs: string[];
  sources?: SourceOptions | undefined;
  signal: AbortSignal;
}

export class JobData {
  #opened: { key: string; data: Promise<TrainingData> } | undefined;
  readonly #options: JobDataOptions;

  constructor(options: JobDataOptions) {
    this.#options = options;
  }

  /** The open data of `dataset`; undefined until one is opened. */
  current: TrainingData | undefined;

  async open(dataset: DatasetSpec): Promise<TrainingData> {
    const key = `${dataset.name}|${dataset.manifest}|${dataset.facts?.digest ?? ""}|${dataset.evalManifest}`;
    if (this.#opened?.key !== key) {
      await this.close();
      const { dataDirs, sources, signal } = this.#options;
      this.#opened = { key, data: openTrainingData(dataset, { dataDirs, sources, signal }) };
    }
    try {
      this.current = await this.#opened.data;
    } catch (error) {
      this.#opened = undefined;
      throw workerFailure("DataUnavailable", error);
    }
    return this.current;
  }

  async close(): Promise<void> {
    const opened = this.#opened;
    this.#opened = undefined;
    this.current = undefined;
    await opened?.data.then(
      (data) => data.close(),
      () => {},
    );
  }
}
