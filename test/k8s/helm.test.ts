/**
 * The Helm chart helm/trainfleet with the real helm binary (scripts/fetch-helm.sh): lint
 * --strict, template with default values, gang-scheduler integration and namespaced RBAC; every
 * rendered manifest validated with kubernetes-models (a ServiceMonitor, which it lacks, with the
 * Prometheus Operator's required shape); the CRD and the RBAC rules equal to their sources in k8s/;
 * the operator Deployment locked down, two replicas electing a leader, with probes and metrics;
 * values.schema.json and the templates refusing bad values.
 * Without helm every test here fails, saying how to get it: never a silent skip.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JsonObject, JsonValue } from "@trainfleet/k8s";
import { isJsonObject, valueAt } from "@trainfleet/k8s";
import { helm, helmBinary } from "@trainfleet/testing/fixtures/helm";
import { chartCrdPath, crdPath } from "@trainfleet/testing/k8s/crd-schema";
import type { PolicyRule } from "@trainfleet/testing/k8s/operator-permissions";
import { allows, chartOperatorPermissionsPath, operatorPermissionsPath, operatorRules } from "@trainfleet/testing/k8s/operator-permissions";
import { createTrainingJobValidator } from "@trainfleet/testing/k8s/training-job-validator";
import { parseManifests, readManifest, repoPath } from "@trainfleet/testing/manifests";
import { Ajv } from "ajv";
import { CustomResourceDefinition } from "kubernetes-models/apiextensions.k8s.io/v1";
import { Deployment } from "kubernetes-models/apps/v1";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1";
import { Service, ServiceAccount } from "kubernetes-models/v1";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const chart = repoPath("helm", "trainfleet");
const namespace = "trainfleet-system";

/**
 * The Prometheus Operator's ServiceMonitor (monitoring.coreos.com/v1), which kubernetes-models
 * lacks: the fields its CRD requires and the ones the chart sets, with their types.
 */
const validateServiceMonitor = new Ajv({ allErrors: true }).compile({
  type: "object",
  required: ["apiVersion", "kind", "metadata", "spec"],
  properties: {
    metadata: {
      type: "object",
      required: ["name", "namespace"],
      properties: {
        name: { type: "string", pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", maxLength: 253 },
        labels: { type: "object", additionalProperties: { type: "string" } },
      },
    },
    spec: {
      type: "object",
      required: ["selector", "endpoints"],
      additionalProperties: false,
      properties: {
        selector: {
          type: "object",
          additionalProperties: false,
          properties: { matchLabels: { type: "object", additionalProperties: { type: "string" } } },
        },
        namespaceSelector: {
          type: "object",
          additionalProperties: false,
          properties: { matchNames: { type: "array", items: { type: "string" } } },
        },
        endpoints: {
          type: "array",
          minItems: 1,
          items: {
            type: "object",
            additionalProperties: false,
            required: ["port"],
            properties: {
              port: { type: "string" },
              path: { type: "string" },
              interval: {
                type: "string",
                pattern: "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
              },
            },
          },
        },
      },
    },
  },
});

class ServiceMonitor {
  constructor(private readonly data: unknown) {}
  validate(): void {
    if (!validateServiceMonitor(this.data)) throw new Error(JSON.stringify(validateServiceMonitor.errors));
  }
}

/** kubernetes-models classes for every kind the chart may render; a kind missing here fails the test. */
const models: Record<string, new (data: never) => { validate(): void }> = {
  "apiextensions.k8s.io/v1/CustomResourceDefinition": CustomResourceDefinition,
  "v1/ServiceAccount": ServiceAccount,
  "rbac.authorization.k8s.io/v1/ClusterRole": ClusterRole,
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": ClusterRoleBinding,
  "rbac.authorization.k8s.io/v1/Role": Role,
  "rbac.authorization.k8s.io/v1/RoleBinding": RoleBinding,
  "apps/v1/Deployment": Deployment,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
  "v1/Service": Service,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
};

function render(args: readonly string[] = [], chartPath = chart): JsonObject[] {
  const result = helm(["template", "tf", chartPath, "--namespace", namespace, "--include-crds", ...args]);
  expect(result.code, result.stderr).toBe(0);
  return parseManifests(result.stdout, "helm template");
}

/** Whom each job's NetworkPolicy admits as the operator: this release's pods in its namespace. */
const operatorPeerArgs = [
  `--operator-namespace=${namespace}`,
  "--operator-pod-labels=app.kubernetes.io/component=operator,app.kubernetes.io/instance=tf,app.kubernetes.io/name=trainfleet",
];

/** The leader-election flags the chart passes by default, then the probe and metrics servers'. */
const leaderElectionArgs = [
  "--leader-elect=true",
  `--leader-election-namespace=${namespace}`,
  "--leader-election-id=tf-trainfleet",
  "--leader-election-lease-duration=15",
  "--leader-election-renew-deadline=10",
  "--leader-election-retry-period=2",
];
const serverArgs = ["--health-listen=:8081", "--metrics-listen=:8080"];

/** The rules the operator's Lease needs, in its own namespace only. */
const leaderElectionRules = (JSON.parse(readFileSync(operatorPermissionsPath, "utf8")) as { leaderElection: PolicyRule[] }).leaderElection;

const kindOf = (object: JsonObject) => `${String(object["apiVersion"])}/${String(object["kind"])}`;
const only = (objects: JsonObject[], kind: string) => objects.filter((object) => object["kind"] === kind);

const variants: [string, string[]][] = [
  ["default values", []],
  ["gang scheduling with both PodGroup APIs", ["--set", "gangScheduling.podGroups={volcano,coscheduling}"]],
  [
    "namespaced RBAC and every optional value",
    [
      "--set",
      "watchNamespaces={ml,research}",
      "--set",
      "gangScheduling.podGroups={volcano}",
      "--set-json",
      'imagePullSecrets=[{"name":"regcred"}]',
      "--set",
      "priorityClassName=system-cluster-critical",
      "--set-json",
      'tolerations=[{"key":"dedicated","operator":"Equal","value":"ops","effect":"NoSchedule"}]',
      "--set",
      "nodeSelector.role=ops",
      "--set",
      "podAnnotations.a=b",
      "--set",
      "podLabels.team=ml",
      "--set",
      "serviceAccount.annotations.x=y",
      "--set",
      "image.tag=0.2.0",
    ],
  ],
  ["one replica without leader election", ["--set", "replicaCount=1", "--set", "leaderElection.enabled=false"]],
  [
    "a ServiceMonitor and metrics peers",
    [
      "--set",
      "serviceMonitor.enabled=true",
      "--set",
      "serviceMonitor.labels.release=prometheus",
      "--set-json",
      'networkPolicy.metricsFrom=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]',
    ],
  ],
];

describe("the helm binary", () => {
  it("is the real pinned helm 3.17.2 from scripts/fetch-helm.sh", () => {
    helmBinary();
    const version = helm(["version", "--short"]);
    expect(version.code, version.stderr).toBe(0);
    expect(version.stdout.trim()).toBe("v3.17.2+gcc0bbbd");
  });
});

describe("the trainfleet chart", () => {
  it("holds a byte-identical copy of k8s/crd.yaml (fix: cp k8s/crd.yaml helm/trainfleet/crds/trainingjobs.trainfleet.dev.yaml)", () => {
    expect(readFileSync(chartCrdPath, "utf8") === readFileSync(crdPath, "utf8")).toBe(true);
  });

  it("holds a byte-identical copy of k8s/operator-permissions.json (fix: cp k8s/operator-permissions.json helm/trainfleet/files/)", () => {
    expect(readFileSync(chartOperatorPermissionsPath, "utf8") === readFileSync(operatorPermissionsPath, "utf8")).toBe(true);
  });

  it.each(variants)("passes helm lint --strict with %s", (_, args) => {
    const lint = helm(["lint", "--strict", chart, ...args]);
    expect(lint.code, lint.stdout + lint.stderr).toBe(0);
    expect(lint.stdout).toContain("1 chart(s) linted, 0 chart(s) failed");
  });

  it("renders the CRD, ServiceAccount, ClusterRole, ClusterRoleBinding, the Lease's Role and RoleBinding, operator Deployment and its NetworkPolicy by default", () => {
    expect(render().map(kindOf)).toEqual([
      "apiextensions.k8s.io/v1/CustomResourceDefinition",
      "networking.k8s.io/v1/NetworkPolicy",
      "v1/ServiceAccount",
      "rbac.authorization.k8s.io/v1/ClusterRole",
      "rbac.authorization.k8s.io/v1/ClusterRoleBinding",
      "rbac.authorization.k8s.io/v1/Role",
      "rbac.authorization.k8s.io/v1/RoleBinding",
      "apps/v1/Deployment",
    ]);
  });

  it("renders a metrics Service and a ServiceMonitor only with serviceMonitor.enabled", () => {
    expect(render().filter((object) => ["Service", "ServiceMonitor"].includes(String(object["kind"])))).toEqual([]);
    const objects = render(["--set", "serviceMonitor.enabled=true", "--set", "serviceMonitor.labels.release=prometheus"]);
    const [service] = only(objects, "Service");
    expect(valueAt(service!, "metadata.name")).toBe("tf-trainfleet-metrics");
    expect(service!["spec"]).toEqual({
      selector: { "app.kubernetes.io/name": "trainfleet", "app.kubernetes.io/instance": "tf", "app.kubernetes.io/component": "operator" },
      ports: [{ name: "metrics", port: 8080, targetPort: "metrics", protocol: "TCP" }],
    });
    const [monitor] = only(objects, "ServiceMonitor");
    expect(valueAt(monitor!, "metadata")).toMatchObject({ name: "tf-trainfleet", namespace, labels: { release: "prometheus" } });
    expect(monitor!["spec"]).toEqual({
      // It selects the metrics Service: the only Service with the operator's selector labels.
      selector: { matchLabels: valueAt(service!, "spec.selector") },
      namespaceSelector: { matchNames: [namespace] },
      endpoints: [{ port: "metrics", path: "/metrics", interval: "30s" }],
    });
    expect(() => new ServiceMonitor({ ...monitor, spec: { selector: {}, endpoints: [{ port: 8080 }] } }).validate()).toThrow(
      /must be string/,
    );
  });

  it.each(variants)("renders only manifests that kubernetes-models validates, with %s", (_, args) => {
    for (const object of render(args)) {
      const Model = models[kindOf(object)];
      expect(Model, `no kubernetes-models class for ${kindOf(object)}: add it to the table`).toBeDefined();
      expect(() => new Model!(object as never).validate(), `${kindOf(object)} ${String(valueAt(object, "metadata.name"))}`).not.toThrow();
    }
  });

  it("renders the CRD exactly as k8s/crd.yaml", () => {
    expect(only(render(), "CustomResourceDefinition")).toEqual([readManifest(crdPath)]);
  });

  it("renders no CRD without --include-crds (Helm installs crds/ itself, once)", () => {
    const result = helm(["template", "tf", chart, "--namespace", namespace]);
    expect(result.code, result.stderr).toBe(0);
    expect(only(parseManifests(result.stdout, "helm template"), "CustomResourceDefinition")).toEqual([]);
  });

  it("labels every object with the standard labels", () => {
    for (const object of render().filter((o) => o["kind"] !== "CustomResourceDefinition")) {
      expect(valueAt(object, "metadata.labels")).toEqual({
        "helm.sh/chart": "trainfleet-0.1.0",
        "app.kubernetes.io/name": "trainfleet",
        "app.kubernetes.io/instance": "tf",
        "app.kubernetes.io/component": "operator",
        "app.kubernetes.io/version": "0.1.0",
        "app.kubernetes.io/part-of": "trainfleet",
        "app.kubernetes.io/managed-by": "Helm",
      });
    }
  });
});

describe("the chart's RBAC", () => {
  const rulesOf = (object: JsonObject | undefined) => object?.["rules"];

  it("grants the operator exactly k8s/operator-permissions.json cluster-wide, and no PodGroups by default", () => {
    const objects = render();
    expect(only(objects, "ClusterRole").map(rulesOf)).toEqual([operatorRules([])]);
    expect(only(objects, "ClusterRoleBinding").map((binding) => [binding["roleRef"], binding["subjects"]])).toEqual([
      [
        { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "tf-trainfleet" },
        [{ kind: "ServiceAccount", name: "tf-trainfleet", namespace }],
      ],
    ]);
    expect(JSON.stringify(objects)).not.toContain("podgroups");
  });

  it.each([[["volcano"]], [["coscheduling"]], [["volcano", "coscheduling"]]])(
    "adds create/get/delete on PodGroups only for the gang schedulers enabled: %j",
    (podGroups) => {
      const objects = render(["--set", `gangScheduling.podGroups={${podGroups.join(",")}}`]);
      expect(only(objects, "ClusterRole").map(rulesOf)).toEqual([operatorRules(podGroups)]);
      const deployment = only(objects, "Deployment")[0]!;
      expect(valueAt(deployment, "spec.template.spec")).toMatchObject({
        containers: [
          {
            args: [
              "operator",
              "--log-level=info",
              "--default-job-image=trainfleet:0.1.0",
              ...operatorPeerArgs,
              `--gang-pod-groups=${podGroups.join(",")}`,
              ...leaderElectionArgs,
              ...serverArgs,
            ],
          },
        ],
      });
    },
  );

  it("uses a Role and RoleBinding in each watched namespace instead of cluster-wide rules", () => {
    const objects = render(["--set", "watchNamespaces={ml,research}"]);
    expect(only(objects, "ClusterRole")).toEqual([]);
    expect(only(objects, "ClusterRoleBinding")).toEqual([]);
    // Besides the Lease's own Role and RoleBinding in the release namespace (tested below).
    const operatorOnly = (kind: string) => only(objects, kind).filter((object) => valueAt(object, "metadata.name") === "tf-trainfleet");
    expect(operatorOnly("Role").map((role) => [valueAt(role, "metadata.namespace"), role["rules"]])).toEqual([
      ["ml", operatorRules([])],
      ["research", operatorRules([])],
    ]);
    expect(operatorOnly("Role")).toHaveLength(only(objects, "Role").length - 1);
    expect(
      operatorOnly("RoleBinding").map((binding) => [valueAt(binding, "metadata.namespace"), binding["roleRef"], binding["subjects"]]),
    ).toEqual(
      ["ml", "research"].map((ns) => [
        ns,
        { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "tf-trainfleet" },
        [{ kind: "ServiceAccount", name: "tf-trainfleet", namespace }],
      ]),
    );
  });

  it("with kueue.enabled grants the Workload rules and the ResourceFlavor rule cluster-wide, and passes --kueue; none of it by default", () => {
    const objects = render(["--set", "kueue.enabled=true"]);
    expect(only(objects, "ClusterRole").map(rulesOf)).toEqual([operatorRules([], { kueue: true })]);
    const args = valueAt(only(objects, "Deployment")[0]!, "spec.template.spec.containers") as JsonValue[];
    expect(valueAt(args[0]!, "args")).toContain("--kueue");
    const plain = render();
    expect(JSON.stringify(only(plain, "ClusterRole"))).not.toContain("kueue.x-k8s.io");
    expect(JSON.stringify(only(plain, "Deployment"))).not.toContain("--kueue");
  });

  it("with kueue.enabled and watched namespaces: the Workload rules in each Role, ResourceFlavors (cluster-scoped) by a ClusterRole of their own", () => {
    const objects = render(["--set", "kueue.enabled=true", "--set", "watchNamespaces={ml,research}"]);
    const permissions = JSON.parse(readFileSync(operatorPermissionsPath, "utf8")) as {
      kueue: { rules: PolicyRule[]; clusterScopedRules: PolicyRule[] };
    };
    const operatorOnly = (kind: string) => only(objects, kind).filter((object) => valueAt(object, "metadata.name") === "tf-trainfleet");
    expect(operatorOnly("Role").map((role) => [valueAt(role, "metadata.namespace"), role["rules"]])).toEqual([
      ["ml", [...operatorRules([]), ...permissions.kueue.rules]],
      ["research", [...operatorRules([]), ...permissions.kueue.rules]],
    ]);
    expect(only(objects, "ClusterRole").map((role) => [valueAt(role, "metadata.name"), role["rules"]])).toEqual([
      ["tf-trainfleet-kueue", permissions.kueue.clusterScopedRules],
    ]);
    expect(only(objects, "ClusterRoleBinding").map((binding) => [binding["roleRef"], binding["subjects"]])).toEqual([
      [
        { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "tf-trainfleet-kueue" },
        [{ kind: "ServiceAccount", name: "tf-trainfleet", namespace }],
      ],
    ]);
    expect(permissions.kueue).toEqual({
      rules: [
        { apiGroups: ["kueue.x-k8s.io"], resources: ["workloads"], verbs: ["get", "list", "watch", "create", "delete", "patch"] },
        { apiGroups: ["kueue.x-k8s.io"], resources: ["workloads/status"], verbs: ["patch"] },
      ],
      clusterScopedRules: [{ apiGroups: ["kueue.x-k8s.io"], resources: ["resourceflavors"], verbs: ["get", "list", "watch"] }],
    });
  });

  it("grants no wildcard, nothing on configmaps or nodes, and on Secrets and NetworkPolicies only what the jobs' credentials need", () => {
    const permissions = JSON.parse(readFileSync(operatorPermissionsPath, "utf8")) as JsonObject;
    const text = JSON.stringify(permissions);
    expect(text).not.toContain('"*"');
    for (const resource of ["configmaps", "nodes", "roles", "clusterroles", "rolebindings"]) expect(text).not.toContain(`"${resource}"`);
    const rules = operatorRules([]);
    // Secrets: made (credentials, tokens), read by name (the job's CA, its read token) and updated by name (a pod's renewed certificate); never listed, watched or deleted (owner references delete them).
    expect(rules.filter((rule) => rule.resources.includes("secrets"))).toEqual([
      { apiGroups: [""], resources: ["secrets"], verbs: ["create", "get", "update"] },
    ]);
    expect(rules.filter((rule) => rule.resources.includes("networkpolicies"))).toEqual([
      { apiGroups: ["networking.k8s.io"], resources: ["networkpolicies"], verbs: ["create"] },
    ]);
  });

  it("answers, for the operator's own tests, whether a call is granted", () => {
    const status = { apiGroup: "trainfleet.dev", resource: "trainingjobs/status", verb: "patch" };
    const podGroup = { apiGroup: "scheduling.volcano.sh", resource: "podgroups", verb: "create" };
    expect([
      allows(operatorRules([]), status),
      allows(operatorRules([]), { ...status, verb: "update" }),
      allows(operatorRules([]), podGroup),
      allows(operatorRules(["volcano"]), podGroup),
    ]).toEqual([true, false, false, true]);
  });

  it("grants the Lease's rules in the release namespace only, by a Role of their own, whatever namespaces are watched", () => {
    for (const args of [[], ["--set", "watchNamespaces={ml,research}"]]) {
      const leaseRoles = only(render(args), "Role").filter((role) => valueAt(role, "metadata.name") === "tf-trainfleet-leader-election");
      expect(leaseRoles.map((role) => [valueAt(role, "metadata.namespace"), role["rules"]])).toEqual([[namespace, leaderElectionRules]]);
      const bindings = only(render(args), "RoleBinding").filter(
        (binding) => valueAt(binding, "metadata.name") === "tf-trainfleet-leader-election",
      );
      expect(bindings.map((binding) => [valueAt(binding, "metadata.namespace"), binding["roleRef"], binding["subjects"]])).toEqual([
        [
          namespace,
          { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "tf-trainfleet-leader-election" },
          [{ kind: "ServiceAccount", name: "tf-trainfleet", namespace }],
        ],
      ]);
    }
    expect(leaderElectionRules).toEqual([
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
    ]);
    // Leases are never granted cluster-wide, and not at all without leader election.
    expect(JSON.stringify(only(render(), "ClusterRole"))).not.toContain("leases");
    const single = render(["--set", "replicaCount=1", "--set", "leaderElection.enabled=false"]);
    expect(JSON.stringify(single)).not.toContain("leases");
  });

  it("renders no RBAC when rbac.create is false", () => {
    const kinds = render(["--set", "rbac.create=false"]).map((object) => object["kind"]);
    expect(kinds).toEqual(["CustomResourceDefinition", "NetworkPolicy", "ServiceAccount", "Deployment"]);
  });
});

describe("the operator's NetworkPolicy", () => {
  it("selects the operator's pods, lets nothing in, and lets it out only to the API server, DNS and coordinators' status port", () => {
    const [policy] = only(render(), "NetworkPolicy");
    expect(valueAt(policy!, "spec")).toEqual({
      podSelector: {
        matchLabels: {
          "app.kubernetes.io/name": "trainfleet",
          "app.kubernetes.io/instance": "tf",
          "app.kubernetes.io/component": "operator",
        },
      },
      policyTypes: ["Ingress", "Egress"],
      egress: [
        { to: [{ ipBlock: { cidr: "0.0.0.0/0" } }], ports: [443, 6443].map((port) => ({ protocol: "TCP", port })) },
        {
          to: [{ namespaceSelector: {}, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }],
          ports: [
            { protocol: "UDP", port: 53 },
            { protocol: "TCP", port: 53 },
          ],
        },
        {
          to: [
            {
              namespaceSelector: {},
              podSelector: { matchLabels: { "app.kubernetes.io/managed-by": "trainfleet-operator", "trainfleet.dev/role": "coordinator" } },
            },
          ],
          ports: [{ protocol: "TCP", port: 7080 }],
        },
      ],
    });
  });

  it("lets in only scrapes of the metrics port: from metricsFrom, else from any pod with serviceMonitor.enabled", () => {
    const ingressOf = (args: string[]) => valueAt(only(render(args), "NetworkPolicy")[0]!, "spec.ingress");
    expect(ingressOf([])).toBeUndefined();
    expect(ingressOf(["--set", "serviceMonitor.enabled=true"])).toEqual([
      { from: [{ namespaceSelector: {} }], ports: [{ protocol: "TCP", port: 8080 }] },
    ]);
    const monitoring = { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } };
    expect(ingressOf(["--set-json", `networkPolicy.metricsFrom=${JSON.stringify([monitoring])}`, "--set", "metrics.port=9090"])).toEqual([
      { from: [monitoring], ports: [{ protocol: "TCP", port: 9090 }] },
    ]);
  });

  it("takes the API server's address from the values, and is left out when networkPolicy.create is false", () => {
    const [policy] = only(
      render(["--set", "networkPolicy.apiServerCIDRs={10.0.0.1/32}", "--set", "networkPolicy.apiServerPorts={6443}"]),
      "NetworkPolicy",
    );
    expect(valueAt(policy!, "spec.egress")).toContainEqual({
      to: [{ ipBlock: { cidr: "10.0.0.1/32" } }],
      ports: [{ protocol: "TCP", port: 6443 }],
    });
    expect(only(render(["--set", "networkPolicy.create=false"]), "NetworkPolicy")).toEqual([]);
  });
});

describe("the operator Deployment", () => {
  it("runs `trainfleet operator` from the values' image, as a non-root user with a read-only root filesystem and no capabilities", () => {
    const deployment = only(render(), "Deployment")[0]!;
    expect(deployment["metadata"]).toMatchObject({ name: "tf-trainfleet", namespace });
    // Two replicas electing a leader: a rolling update starts (and readies) a new pod before it stops an old one.
    expect(deployment["spec"]).toMatchObject({
      replicas: 2,
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
    });
    const pod = valueAt(deployment, "spec.template.spec") as JsonObject;
    expect(pod["serviceAccountName"]).toBe("tf-trainfleet");
    expect(pod["securityContext"]).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(pod["containers"]).toEqual([
      {
        name: "operator",
        image: "trainfleet:0.1.0",
        imagePullPolicy: "IfNotPresent",
        args: [
          "operator",
          "--log-level=info",
          "--default-job-image=trainfleet:0.1.0",
          ...operatorPeerArgs,
          ...leaderElectionArgs,
          ...serverArgs,
        ],
        env: [{ name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } }],
        ports: [
          { name: "metrics", containerPort: 8080, protocol: "TCP" },
          { name: "health", containerPort: 8081, protocol: "TCP" },
        ],
        livenessProbe: { httpGet: { path: "/healthz", port: "health" }, periodSeconds: 10, failureThreshold: 3 },
        readinessProbe: { httpGet: { path: "/readyz", port: "health" }, periodSeconds: 5, failureThreshold: 2 },
        securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
        resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "256Mi" } },
        volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
      },
    ]);
    expect(pod["volumes"]).toEqual([{ name: "tmp", emptyDir: {} }]);
    // The replicas on different nodes where the scheduler can.
    expect(pod["affinity"]).toEqual({
      podAntiAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          {
            weight: 100,
            podAffinityTerm: {
              topologyKey: "kubernetes.io/hostname",
              labelSelector: {
                matchLabels: {
                  "app.kubernetes.io/name": "trainfleet",
                  "app.kubernetes.io/instance": "tf",
                  "app.kubernetes.io/component": "operator",
                },
              },
            },
          },
        ],
      },
    });
  });

  it("runs one replica with the Recreate strategy and no leader election when it is off", () => {
    const deployment = only(render(["--set", "replicaCount=1", "--set", "leaderElection.enabled=false"]), "Deployment")[0]!;
    expect(deployment["spec"]).toMatchObject({ replicas: 1, strategy: { type: "Recreate" } });
    expect((valueAt(deployment, "spec.template.spec.containers") as JsonObject[])[0]!["args"]).toEqual([
      "operator",
      "--log-level=info",
      "--default-job-image=trainfleet:0.1.0",
      ...operatorPeerArgs,
      ...serverArgs,
    ]);
    expect(valueAt(deployment, "spec.template.spec.affinity")).toBeUndefined();
  });

  it("takes the lease timing and the ports from the values, and the user's affinity instead of its own", () => {
    const deployment = only(
      render([
        "--set",
        "leaderElection.leaseDurationSeconds=30",
        "--set",
        "leaderElection.renewDeadlineSeconds=20",
        "--set-json",
        "leaderElection.retryPeriodSeconds=2.5",
        "--set",
        "health.port=9091",
        "--set",
        "metrics.port=9090",
        "--set-json",
        'affinity={"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"role","operator":"In","values":["ops"]}]}]}}}',
      ]),
      "Deployment",
    )[0]!;
    const [container] = valueAt(deployment, "spec.template.spec.containers") as JsonObject[];
    expect((container!["args"] as string[]).slice(-5)).toEqual([
      "--leader-election-lease-duration=30",
      "--leader-election-renew-deadline=20",
      "--leader-election-retry-period=2.5",
      "--health-listen=:9091",
      "--metrics-listen=:9090",
    ]);
    expect(container!["ports"]).toEqual([
      { name: "metrics", containerPort: 9090, protocol: "TCP" },
      { name: "health", containerPort: 9091, protocol: "TCP" },
    ]);
    expect(Object.keys(valueAt(deployment, "spec.template.spec.affinity") as JsonObject)).toEqual(["nodeAffinity"]);
  });

  it("takes its image, namespaces and log level from the values", () => {
    const objects = render([
      "--set",
      "image.repository=registry.example.com/trainfleet",
      "--set",
      "image.tag=0.2.0",
      "--set",
      "watchNamespaces={ml}",
      "--set",
      "logLevel=debug",
    ]);
    const container = (valueAt(only(objects, "Deployment")[0]!, "spec.template.spec.containers") as JsonObject[])[0]!;
    expect([container["image"], container["args"]]).toEqual([
      "registry.example.com/trainfleet:0.2.0",
      [
        "operator",
        "--log-level=debug",
        "--default-job-image=registry.example.com/trainfleet:0.2.0",
        ...operatorPeerArgs,
        "--namespaces=ml",
        ...leaderElectionArgs,
        ...serverArgs,
      ],
    ]);
  });

  it("gives the operator jobImage as the image of jobs that name none, each empty field the operator's image's", () => {
    const defaultJobImage = (args: string[]) => {
      const container = (valueAt(only(render(args), "Deployment")[0]!, "spec.template.spec.containers") as JsonObject[])[0]!;
      const given = (container["args"] as string[]).filter((arg) => arg.startsWith("--default-job-image="));
      expect(given).toHaveLength(1);
      return given[0]!.slice("--default-job-image=".length);
    };
    const operatorImage = ["--set", "image.repository=registry.example.com/team/trainfleet", "--set", "image.tag=0.2.0"];
    expect(defaultJobImage([])).toBe("trainfleet:0.1.0");
    expect(defaultJobImage(operatorImage)).toBe("registry.example.com/team/trainfleet:0.2.0");
    expect(defaultJobImage([...operatorImage, "--set", "jobImage.tag=0.2.0-gpu"])).toBe("registry.example.com/team/trainfleet:0.2.0-gpu");
    expect(defaultJobImage(["--set", "jobImage.repository=localhost:5000/trainfleet-gpu"])).toBe("localhost:5000/trainfleet-gpu:0.1.0");
  });
});

describe("values.schema.json", () => {
  const refused: [string, string[], RegExp][] = [
    ["a negative replica count", ["--set", "replicaCount=-1"], /replicaCount: Must be greater than or equal to 0/],
    [
      "two operators without leader election",
      ["--set", "leaderElection.enabled=false"],
      /replicaCount is 2 but leaderElection\.enabled is false: without leader election run at most 1 replica/,
    ],
    [
      "a renew deadline as long as the lease",
      ["--set", "leaderElection.renewDeadlineSeconds=15"],
      /leaderElection\.renewDeadlineSeconds must be shorter than leaderElection\.leaseDurationSeconds/,
    ],
    [
      "a retry period too long to renew within the deadline",
      ["--set", "leaderElection.retryPeriodSeconds=9"],
      /leaderElection\.renewDeadlineSeconds must be longer than 1\.2 x leaderElection\.retryPeriodSeconds/,
    ],
    [
      "a lease of a fraction of a second (a Lease stores whole seconds)",
      ["--set-json", "leaderElection.leaseDurationSeconds=1.5"],
      /leaderElection\.leaseDurationSeconds: Invalid type\. Expected: integer, given: number/,
    ],
    ["one port for probes and metrics", ["--set", "health.port=8080"], /health\.port and metrics\.port must differ/],
    ["a port out of range", ["--set", "metrics.port=70000"], /metrics\.port: Must be less than or equal to 65535/],
    [
      "a scrape interval that is no duration",
      ["--set", "serviceMonitor.interval=often"],
      /serviceMonitor\.interval: Does not match pattern/,
    ],
    [
      "a metrics peer with an unknown field",
      ["--set-json", 'networkPolicy.metricsFrom=[{"namespace":"monitoring"}]'],
      /networkPolicy\.metricsFrom\.0: Additional property namespace is not allowed/,
    ],
    [
      "an unknown gang scheduler",
      ["--set", "gangScheduling.podGroups={kueue}"],
      /gangScheduling\.podGroups\.0 must be one of the following: "volcano", "coscheduling"/,
    ],
    [
      "an unknown log level",
      ["--set", "logLevel=verbose"],
      /logLevel: logLevel must be one of the following: "debug", "info", "warn", "error"/,
    ],
    [
      "an unknown pull policy",
      ["--set", "image.pullPolicy=Sometimes"],
      /image\.pullPolicy: image\.pullPolicy must be one of the following/,
    ],
    [
      "a job image repository in capitals",
      ["--set", "jobImage.repository=Registry/Trainfleet"],
      /jobImage\.repository: Does not match pattern/,
    ],
    ["a job image tag with a colon", ["--set", "jobImage.tag=0.1:gpu"], /jobImage\.tag: Does not match pattern/],
    ["a misspelt value", ["--set", "replicas=1"], /Additional property replicas is not allowed/],
    ["a namespace that is no DNS label", ["--set", "watchNamespaces={ML}"], /watchNamespaces\.0: Does not match pattern/],
    [
      "a memory limit that is no quantity",
      ["--set", "resources.limits.memory=lots"],
      /resources\.limits\.memory: Must validate one and only one schema/,
    ],
    ["rbac.create as a string", ["--set-string", "rbac.create=yes"], /rbac\.create: Invalid type\. Expected: boolean, given: string/],
  ];
  it.each(refused)("refuses %s, naming the value", (_, args, message) => {
    const result = helm(["template", "tf", chart, ...args]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(message);
  });

  it("types every value of values.yaml, and closes every object", () => {
    const schema = JSON.parse(readFileSync(join(chart, "values.schema.json"), "utf8")) as JsonObject;
    const definitions = schema["definitions"] as JsonObject;
    const resolve = (node: JsonObject): JsonObject =>
      typeof node["$ref"] === "string" ? (definitions[node["$ref"].replace("#/definitions/", "")] as JsonObject) : node;
    const problems: string[] = [];
    const walk = (raw: JsonObject, path: string) => {
      const node = resolve(raw);
      if (node["type"] === undefined && node["oneOf"] === undefined) problems.push(`${path}: no type`);
      if (node["type"] === "object" && node["additionalProperties"] === undefined) problems.push(`${path}: open object`);
      for (const [key, child] of Object.entries(isJsonObject(node["properties"]) ? node["properties"] : {}))
        walk(child as JsonObject, `${path}.${key}`);
      if (isJsonObject(node["items"])) walk(node["items"], `${path}[]`);
    };
    walk(schema, "values");
    expect(problems.filter((problem) => !/^values\.affinity\.\w+: open object$/.test(problem))).toEqual([]);
    const values = parseManifests(readFileSync(join(chart, "values.yaml"), "utf8"), "values.yaml")[0]!;
    const missing = (value: JsonValue, node: JsonObject, path: string): string[] => {
      const resolved = resolve(node);
      if (!isJsonObject(value) || !isJsonObject(resolved["properties"])) return [];
      const properties = resolved["properties"];
      return Object.entries(value).flatMap(([key, child]) =>
        isJsonObject(properties[key]) ? missing(child, properties[key], `${path}.${key}`) : [`${path}.${key}`],
      );
    };
    expect(missing(values, schema, "values")).toEqual([]);
  });
});

describe("NOTES.txt", () => {
  let copy = "";
  beforeAll(() => void (copy = mkdtempSync(join(tmpdir(), "trainfleet-chart-"))));
  afterAll(() => rmSync(copy, { recursive: true, force: true }));

  /** The rendered NOTES.txt, by rendering it into a ConfigMap in a copy of the chart. */
  function notes(args: string[] = []): string {
    cpSync(chart, copy, { recursive: true });
    writeFileSync(
      join(copy, "templates", "zz-notes.yaml"),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ include "trainfleet/templates/NOTES.txt" . | toJson }}\n',
    );
    const result = helm(["template", "tf", copy, "--namespace", namespace, "--show-only", "templates/zz-notes.yaml", ...args]);
    expect(result.code, result.stderr).toBe(0);
    return String(valueAt(parseManifests(result.stdout, "notes")[0]!, "data.notes"));
  }

  it("says where the operator runs and what it manages", () => {
    expect(notes()).toContain("the operator tf-trainfleet in namespace trainfleet-system,\nmanaging TrainingJobs in every namespace.");
    const scoped = notes(["--set", "watchNamespaces={ml,research}", "--set", "gangScheduling.podGroups={volcano}"]);
    expect(scoped).toContain("managing TrainingJobs in: ml, research.\nGang scheduling creates PodGroups for: volcano.");
  });

  it("says how to find the leader when replicas elect one", () => {
    expect(notes()).toContain(
      "2 replicas elect one leader; the others stand by. The leader (the pod name before the \"_\"):\n\n  kubectl get lease -n trainfleet-system tf-trainfleet -o jsonpath='{.spec.holderIdentity}'",
    );
    expect(notes(["--set", "replicaCount=1", "--set", "leaderElection.enabled=false"])).not.toContain("kubectl get lease");
  });

  it("shows a TrainingJob that the CRD accepts, with the chart's job image", () => {
    const jobOf = (text: string) => {
      const match = /<<'YAML'\n([\s\S]*?)\n {2}YAML/.exec(text);
      expect(match, text).not.toBeNull();
      return parseManifests(match![1]!.replace(/^ {2}/gm, ""), "NOTES.txt")[0]!;
    };
    const job = jobOf(notes());
    expect(valueAt(job, "spec.image")).toBe("trainfleet:0.1.0");
    expect(createTrainingJobValidator()(job).violations).toEqual([]);
    const pushed = notes(["--set", "image.repository=registry.example.com/team/trainfleet", "--set", "jobImage.tag=0.1.0-gpu"]);
    expect(valueAt(jobOf(pushed), "spec.image")).toBe("registry.example.com/team/trainfleet:0.1.0-gpu");
    expect(pushed).toContain("a job\nthat names no image runs registry.example.com/team/trainfleet:0.1.0-gpu (the jobImage value).");
  });

  it("says how to build and push the image while image.repository is the chart's default, which no registry holds", () => {
    expect(notes()).toContain(
      'image.repository is "trainfleet", a name no registry holds: build the image and push it to\nyours (npm run image -- --tag REGISTRY/trainfleet:0.1.0 --push)',
    );
    expect(notes(["--set", "image.repository=registry.example.com/team/trainfleet"])).not.toContain("npm run image");
  });
});
