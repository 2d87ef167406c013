/**
 * `trainfleet scale NAME N` (or `--replicas N`): sets a TrainingJob's worker count through its `scale`
 * subresource (spec.workers.replicas), as `kubectl scale tj NAME --replicas=N` and an autoscaler
 * do. The patch is a JSON merge patch of the Scale, sent with its Content-Type named
 * (client-node's generated patch calls would otherwise send application/json-patch+json).
 */
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { Command } from "../command.js";
import { requireNumber, requireString } from "../command.js";
import { commonFlags } from "../common-flags.js";
import { apiError, connect, isApiStatus, kubeFlags, resourceName, trainingJobsResource } from "../kube-client.js";

export const scaleCommand: Command = {
  name: "scale",
  usage: "trainfleet scale NAME N [--namespace NS]   (N may also be given as --replicas N)",
  summary:
    "Sets the number of workers of a TrainingJob through its scale subresource (spec.workers.replicas), as kubectl scale does. The API server may refuse a count outside the job's limits (workers.minWorkers, workers.maxWorkers); its reason is shown.",
  positionals: ["name", "replicas"],
  flags: {
    name: { kind: "string", help: "The TrainingJob (required; may be given as the first argument)." },
    replicas: { kind: "integer", min: 1, help: "The number of workers, 1 or more (required)." },
    ...kubeFlags,
    "log-level": commonFlags["log-level"]!,
  },
  async run({ values, env }) {
    const name = requireString(values, "name");
    const replicas = requireNumber(values, "replicas");
    const target = await connect(values, env);
    const { namespace } = target;
    try {
      await target.api.patchNamespacedCustomObjectScale(
        { ...trainingJobsResource, namespace, name, body: { spec: { replicas } } },
        target.client.setHeaderOptions("Content-Type", target.client.PatchStrategy.MergePatch),
      );
    } catch (caught) {
      const error = apiError(target, `cannot scale ${resourceName}/${name} in namespace ${namespace} to ${replicas}`, caught);
      if (isApiStatus(error, 404)) {
        throw new TrainfleetError(
          Code.NOT_FOUND,
          `${resourceName} "${name}" not found in namespace ${namespace} (trainfleet get lists the namespace's TrainingJobs)`,
          { cause: error },
        );
      }
      throw error;
    }
    process.stdout.write(`${resourceName}/${name} scaled\n`);
    return 0;
  },
};
