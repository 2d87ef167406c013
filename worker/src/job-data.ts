/**
 * The records a job trains on, opened once per dataset (and module, which may decode them): a
 * new generation, or a new session with the same coordinator, keeps them (and their cache of
 * decoded blocks).
 */
import type { SourceOptions } from "@trainfleet/artifacts";
import type { JobSpec } from "@trainfleet/proto";
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

  /** The data of `spec.dataset`, decoded by spec.model.layers.module where a manifest asks for it. */
  async open(spec: Pick<JobSpec, "dataset" | "model">): Promise<TrainingData> {
    const dataset = spec.dataset!;
    const model = spec.model?.kind;
    const module = model?.case === "layers" ? model.value.module : "";
    const key = `${dataset.name}|${dataset.manifest}|${dataset.facts?.digest ?? ""}|${dataset.evalManifest}|${module}`;
    if (this.#opened?.key !== key) {
      await this.close();
      const { dataDirs, sources, signal } = this.#options;
      this.#opened = { key, data: openTrainingData(dataset, { dataDirs, sources, signal, module }) };
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
