/**
 * What the operator watches of Kueue when it runs with --kueue: the Workloads it made (by its
 * label), per watched namespace, and Kueue's ResourceFlavors (cluster-scoped). A change to a
 * Workload is a change to its job; a new or changed flavor may let an admitted job start. When
 * Kueue is not installed the lists fail and the informers try again with their backoff;
 * meanwhile each queued job says so (its Workload cannot be created).
 */
import type { CustomObjectsApi, KubeConfig, KubernetesListObject, KubernetesObject } from "@kubernetes/client-node";
import { makeInformer } from "@kubernetes/client-node";
import type { Logger } from "@trainfleet/runtime";
import { assignedFlavors } from "./kueue-flavors.js";
import type { ResourceFlavor, Workload } from "./kueue-workload.js";
import { resourceFlavorApi, workloadApi } from "./kueue-workload.js";
import { labels, managedSelector } from "./names.js";
import { ownedBy } from "./owner.js";
import type { InformerBackoff } from "./restarting-informer.js";
import { RestartingInformer } from "./restarting-informer.js";
import type { TrainingJob } from "./training-job.js";

export interface KueueInformerOptions {
  kubeConfig: KubeConfig;
  custom: CustomObjectsApi;
  logger: Logger;
  backoff: InformerBackoff;
  /** A Workload changed: its job is looked at again. */
  onWorkload: (workload: KubernetesObject) => void;
  /** Every job is looked at again (a flavor changed, or an informer restarted). */
  onAll: () => void;
}

export class KueueInformers {
  readonly #options: KueueInformerOptions;
  readonly #workloads: RestartingInformer<Workload & KubernetesObject>[] = [];
  readonly #resourceFlavors: RestartingInformer<ResourceFlavor & KubernetesObject>;

  /** The Workloads of each of `namespaces` (undefined: all namespaces), and the ResourceFlavors. */
  constructor(namespaces: readonly (string | undefined)[], options: KueueInformerOptions) {
    this.#options = options;
    for (const namespace of namespaces) this.#workloads.push(this.#workloadInformer(namespace));
    this.#resourceFlavors = this.#resourceFlavorInformer();
  }

  get informers(): RestartingInformer<KubernetesObject>[] {
    return [...this.#workloads, this.#resourceFlavors] as RestartingInformer<KubernetesObject>[];
  }

  /** The job's Workload (this incarnation's) and the ResourceFlavors its admission names, as cached. */
  observed(job: TrainingJob): { workload?: Workload; resourceFlavors: ReadonlyMap<string, ResourceFlavor> } {
    const workload = this.#workloads
      .flatMap((informer) => informer.informer.list(job.metadata.namespace))
      .find((candidate) => candidate.metadata?.labels?.[labels.jobName] === job.metadata.name && ownedBy(candidate, job));
    const resourceFlavors = new Map<string, ResourceFlavor>();
    for (const name of workload === undefined ? [] : [...assignedFlavors(workload).values()].flat()) {
      const flavor = this.#resourceFlavors.informer.get(name);
      if (flavor !== undefined) resourceFlavors.set(name, flavor);
    }
    return { ...(workload === undefined ? {} : { workload }), resourceFlavors };
  }

  #workloadInformer(namespace: string | undefined): RestartingInformer<Workload & KubernetesObject> {
    const { kubeConfig, custom, logger, backoff, onWorkload, onAll } = this.#options;
    const prefix = namespace === undefined ? "" : `/namespaces/${namespace}`;
    const { group, version, plural } = workloadApi;
    type WorkloadList = KubernetesListObject<Workload & KubernetesObject>;
    const informer = makeInformer<Workload & KubernetesObject>(
      kubeConfig,
      `/apis/${group}/${version}${prefix}/${plural}`,
      () =>
        (namespace === undefined
          ? custom.listClusterCustomObject({ group, version, plural, labelSelector: managedSelector })
          : custom.listNamespacedCustomObject({
              group,
              version,
              namespace,
              plural,
              labelSelector: managedSelector,
            })) as Promise<WorkloadList>,
      managedSelector,
    );
    for (const verb of ["add", "update", "delete"] as const) informer.on(verb, onWorkload);
    return new RestartingInformer(`workloads (${namespace ?? "all namespaces"})`, informer, logger, backoff, onAll);
  }

  #resourceFlavorInformer(): RestartingInformer<ResourceFlavor & KubernetesObject> {
    const { kubeConfig, custom, logger, backoff, onAll } = this.#options;
    const { group, version, plural } = resourceFlavorApi;
    type FlavorList = KubernetesListObject<ResourceFlavor & KubernetesObject>;
    const informer = makeInformer<ResourceFlavor & KubernetesObject>(
      kubeConfig,
      `/apis/${group}/${version}/${plural}`,
      () => custom.listClusterCustomObject({ group, version, plural }) as Promise<FlavorList>,
    );
    for (const verb of ["add", "update"] as const) informer.on(verb, onAll);
    return new RestartingInformer("resourceflavors", informer, logger, backoff, onAll);
  }
}
