/**
 * The operator's intended Kubernetes API calls, from k8s/operator-permissions.json: what the
 * chart's RBAC grants (test/k8s/helm.test.ts) and all that the operator may call (its own
 * tests check each request it makes with `allows`).
 */
import { readFileSync } from "node:fs";
import { repoPath } from "../manifests.js";

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

export interface OperatorPermissions {
  rules: PolicyRule[];
  /** Extra rules per gang scheduler (the chart's gangScheduling.podGroups values). */
  gangScheduling: Record<string, PolicyRule[]>;
  /**
   * Extra rules with the operator's Kueue integration (the chart's kueue.enabled): on Workloads,
   * granted where the others are, and on ResourceFlavors, which are cluster-scoped (a ClusterRole).
   */
  kueue: { rules: PolicyRule[]; clusterScopedRules: PolicyRule[] };
}

export const operatorPermissionsPath = repoPath("k8s", "operator-permissions.json");
export const chartOperatorPermissionsPath = repoPath("helm", "trainfleet", "files", "operator-permissions.json");

export function loadOperatorPermissions(path = operatorPermissionsPath): OperatorPermissions {
  const parsed = JSON.parse(readFileSync(path, "utf8")) as OperatorPermissions;
  return { rules: parsed.rules, gangScheduling: parsed.gangScheduling, kueue: parsed.kueue };
}

/** The rules the operator needs with the given gang schedulers' PodGroups enabled (and with its Kueue integration). */
export function operatorRules(
  podGroups: readonly string[],
  options: { kueue?: boolean } = {},
  permissions = loadOperatorPermissions(),
): PolicyRule[] {
  return [
    ...permissions.rules,
    ...podGroups.flatMap((name) => {
      const rules = permissions.gangScheduling[name];
      if (rules === undefined) throw new Error(`no PodGroup rules for gang scheduler ${name}`);
      return rules;
    }),
    ...(options.kueue === true ? [...permissions.kueue.rules, ...permissions.kueue.clusterScopedRules] : []),
  ];
}

/** Whether `rules` allow `verb` on `resource` (with its subresource: "trainingjobs/status") of `apiGroup`. */
export function allows(rules: readonly PolicyRule[], request: { apiGroup: string; resource: string; verb: string }): boolean {
  return rules.some(
    (rule) => rule.apiGroups.includes(request.apiGroup) && rule.resources.includes(request.resource) && rule.verbs.includes(request.verb),
  );
}
