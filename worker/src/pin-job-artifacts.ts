/**
 * Reads the files a job brings, once, where it enters a process that can read them
 * (trainfleet run, submit and coordinator), and pins what they hold into the spec: the
 * dataset's record counts and shape (spec.dataset.facts) and the model's trainable tensors
 * (spec.model.layers.artifact), each with the sha256 of the bytes read; each shard file's
 * size and footer are checked against the manifest. Every role then
 * derives the same layout and ledger from the spec alone, and checks the files it reads
 * against those digests. A spec pinned before (a checkpoint's) is read again and must
 * match: resuming against changed files fails here, naming what changed.
 */
import { clone, create } from "@bufbuild/protobuf";
import type { SourceOptions } from "@trainfleet/artifacts";
import { Code, DatasetFactsSchema, JobSpecSchema, ModelArtifactSchema, TrainfleetError } from "@trainfleet/proto";
import type { ResolvedJobSpec } from "@trainfleet/spec";
import { dataShape, resolveJobSpec } from "@trainfleet/spec";
import { inspectModel } from "./compute/model-inspection.js";
import { checkShardFiles } from "./dataset/check-shard-files.js";
import { datasetFacts, readDatasetManifests } from "./dataset/dataset-facts.js";

export interface PinOptions {
  sources?: SourceOptions | undefined;
}

export async function pinJobArtifacts(resolved: ResolvedJobSpec, options: PinOptions = {}): Promise<ResolvedJobSpec> {
  const model = resolved.model!.kind;
  if (model.case !== "layers" && resolved.dataset!.manifest === "") return resolved;
  const spec = clone(JobSpecSchema, resolved);
  const dataset = spec.dataset!;
  if (dataset.manifest !== "") {
    const facts = create(DatasetFactsSchema, await datasetFacts(dataset, options));
    const pinned = dataset.facts;
    if (pinned !== undefined && pinned.digest !== "" && (pinned.digest !== facts.digest || pinned.evalDigest !== facts.evalDigest)) {
      throw changed("spec.dataset", `the dataset manifest ${dataset.manifest}`, pinned.digest, facts.digest);
    }
    dataset.facts = facts;
    // A missing shard, or one that disagrees with its manifest, fails here rather than deep into an epoch.
    const { train, evaluation } = await readDatasetManifests(dataset, options);
    for (const loaded of [train, evaluation]) if (loaded !== undefined) await checkShardFiles(loaded, options.sources);
  }
  const layers = spec.model!.kind;
  if (layers.case === "layers") {
    const inspection = await inspectModel(spec.model!, dataShape(dataset), options);
    const artifact = create(ModelArtifactSchema, inspection.artifact!);
    const pinned = layers.value.artifact;
    if (pinned !== undefined && pinned.digest !== "" && pinned.digest !== artifact.digest) {
      throw changed("spec.model.layers", `the model ${layers.value.uri}`, pinned.digest, artifact.digest);
    }
    layers.value.artifact = artifact;
  }
  return resolveJobSpec(spec);
}

function changed(field: string, what: string, pinned: string, now: string): TrainfleetError {
  return new TrainfleetError(
    Code.FAILED_PRECONDITION,
    `${field}: ${what} changed since the job was pinned to it (sha256 ${pinned.slice(0, 12)}..., now ${now.slice(0, 12)}...): ` +
      "a job, and a checkpoint of it, trains only the files it started with; restore them, or start a new job",
    { field },
  );
}
