/**
 * The Pod Security Standards checker (testing/src/k8s/pod-security-standards.ts) itself: a pod
 * that follows the "restricted" profile passes both profiles, and a pod that breaks one control
 * is flagged with that control and the field, once per level that has the control, and with
 * nothing else; the page's exemptions (container fields left unset under a pod-level value,
 * Windows pods) hold. The operator's own pods are checked in pod-security.test.ts.
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { PodSecurityLevel } from "@trainfleet/testing/k8s/pod-security-standards";
import { podSecurityViolations } from "@trainfleet/testing/k8s/pod-security-standards";
import { describe, expect, it } from "vitest";

/** A pod as "restricted" wants it: an init container, a sidecar and every allowed volume type. */
function compliantPod(): V1Pod {
  const restrictedContainer = { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } };
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "p", annotations: { "container.apparmor.security.beta.kubernetes.io/app": "runtime/default" } },
    spec: {
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 1000,
        seccompProfile: { type: "RuntimeDefault" },
        sysctls: [{ name: "net.ipv4.ip_local_port_range", value: "1024 65535" }],
        seLinuxOptions: { type: "container_t", level: "s0:c123,c456" },
        appArmorProfile: { type: "RuntimeDefault" },
      },
      initContainers: [{ name: "init", image: "busybox", securityContext: restrictedContainer }],
      containers: [
        {
          name: "app",
          image: "app",
          ports: [{ containerPort: 80, hostPort: 0 }],
          readinessProbe: { httpGet: { path: "/readyz", port: 80 } },
          securityContext: { ...restrictedContainer, capabilities: { drop: ["ALL"], add: ["NET_BIND_SERVICE"] }, procMount: "Default" },
        },
        { name: "sidecar", image: "sidecar", securityContext: { ...restrictedContainer, runAsNonRoot: true } },
      ],
      volumes: [
        { name: "a", configMap: { name: "c" } },
        { name: "b", csi: { driver: "d" } },
        { name: "c", downwardAPI: {} },
        { name: "d", emptyDir: {} },
        { name: "e", ephemeral: {} },
        { name: "f", persistentVolumeClaim: { claimName: "claim" } },
        { name: "g", projected: { sources: [] } },
        { name: "h", secret: { secretName: "s" } },
      ],
    },
  };
}

/** A copy of the compliant pod with `change` made to it. */
function breaking(change: (pod: V1Pod & { spec: NonNullable<V1Pod["spec"]> }) => void): V1Pod {
  const pod = compliantPod() as V1Pod & { spec: NonNullable<V1Pod["spec"]> };
  change(pod);
  return pod;
}

const app = (pod: V1Pod) => pod.spec!.containers[0]!.securityContext!;
const violations = (pod: V1Pod, level: PodSecurityLevel) =>
  podSecurityViolations(pod, level).map((violation) => [violation.level, violation.control, violation.path]);

describe("the Pod Security Standards checker", () => {
  it("passes a pod that follows the restricted profile, at both levels", () => {
    expect(podSecurityViolations(compliantPod(), "baseline")).toEqual([]);
    expect(podSecurityViolations(compliantPod(), "restricted")).toEqual([]);
  });

  type Case = [name: string, pod: V1Pod, expected: string[][]];
  const baselineCases: Case[] = [
    [
      "a Windows HostProcess container",
      breaking((pod) => void (app(pod).windowsOptions = { hostProcess: true })),
      [["HostProcess", "spec.containers[0].securityContext.windowsOptions.hostProcess"]],
    ],
    ["the host's network", breaking((pod) => void (pod.spec.hostNetwork = true)), [["Host Namespaces", "spec.hostNetwork"]]],
    ["the host's PIDs", breaking((pod) => void (pod.spec.hostPID = true)), [["Host Namespaces", "spec.hostPID"]]],
    ["the host's IPC", breaking((pod) => void (pod.spec.hostIPC = true)), [["Host Namespaces", "spec.hostIPC"]]],
    [
      "a privileged init container",
      breaking((pod) => void (pod.spec.initContainers![0]!.securityContext!.privileged = true)),
      [["Privileged Containers", "spec.initContainers[0].securityContext.privileged"]],
    ],
    [
      "a privileged ephemeral container",
      breaking(
        (pod) =>
          void (pod.spec.ephemeralContainers = [
            {
              name: "debug",
              image: "busybox",
              securityContext: { privileged: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
            },
          ]),
      ),
      [["Privileged Containers", "spec.ephemeralContainers[0].securityContext.privileged"]],
    ],
    [
      "a hostPath volume",
      breaking((pod) => void pod.spec.volumes!.push({ name: "host", hostPath: { path: "/" } })),
      [
        ["HostPath Volumes", "spec.volumes[8].hostPath"],
        ["Volume Types", "spec.volumes[8]"],
      ],
    ],
    [
      "a host port",
      breaking((pod) => void (pod.spec.containers[0]!.ports![0]!.hostPort = 8080)),
      [["Host Ports", "spec.containers[0].ports[0].hostPort"]],
    ],
    [
      "a probe on another host",
      breaking((pod) => void (pod.spec.containers[0]!.readinessProbe!.httpGet!.host = "10.0.0.1")),
      [["Host Probes / Lifecycle Hooks", "spec.containers[0].readinessProbe.httpGet.host"]],
    ],
    [
      "a lifecycle hook on another host",
      breaking((pod) => void (pod.spec.containers[1]!.lifecycle = { preStop: { tcpSocket: { host: "node", port: 22 } } })),
      [["Host Probes / Lifecycle Hooks", "spec.containers[1].lifecycle.preStop.tcpSocket.host"]],
    ],
    [
      "an unconfined AppArmor profile",
      breaking((pod) => void (app(pod).appArmorProfile = { type: "Unconfined" })),
      [["AppArmor", "spec.containers[0].securityContext.appArmorProfile.type"]],
    ],
    [
      "an unconfined AppArmor annotation",
      breaking((pod) => void (pod.metadata!.annotations!["container.apparmor.security.beta.kubernetes.io/app"] = "unconfined")),
      [["AppArmor", "metadata.annotations['container.apparmor.security.beta.kubernetes.io/app']"]],
    ],
    [
      "a custom SELinux type",
      breaking((pod) => void (pod.spec.securityContext!.seLinuxOptions = { type: "spc_t" })),
      [["SELinux", "spec.securityContext.seLinuxOptions.type"]],
    ],
    [
      "an SELinux user",
      breaking((pod) => void (app(pod).seLinuxOptions = { user: "system_u" })),
      [["SELinux", "spec.containers[0].securityContext.seLinuxOptions.user"]],
    ],
    [
      "an unmasked /proc",
      breaking((pod) => void (app(pod).procMount = "Unmasked")),
      [["/proc Mount Type", "spec.containers[0].securityContext.procMount"]],
    ],
    [
      "an unsafe sysctl",
      breaking((pod) => void pod.spec.securityContext!.sysctls!.push({ name: "kernel.msgmax", value: "65536" })),
      [["Sysctls", "spec.securityContext.sysctls[1].name"]],
    ],
  ];
  it.each(baselineCases)("flags %s under baseline and restricted", (_, pod, expected) => {
    const baselineOnly = expected.filter(([control]) => control !== "Volume Types");
    expect(violations(pod, "baseline")).toEqual(baselineOnly.map(([control, path]) => ["baseline", control, path]));
    const restrictedToo = expected.map(([control, path]) => [control === "Volume Types" ? "restricted" : "baseline", control, path]);
    expect(violations(pod, "restricted")).toEqual(restrictedToo);
  });

  const twoLevelCases: Case[] = [
    [
      "a capability beyond the baseline's",
      breaking((pod) => void (app(pod).capabilities!.add = ["SYS_ADMIN"])),
      [
        ["baseline", "Capabilities", "spec.containers[0].securityContext.capabilities.add[0]"],
        ["restricted", "Capabilities", "spec.containers[0].securityContext.capabilities.add[0]"],
      ],
    ],
    [
      "an unconfined seccomp profile on the pod",
      breaking((pod) => void (pod.spec.securityContext!.seccompProfile = { type: "Unconfined" })),
      [
        ["baseline", "Seccomp", "spec.securityContext.seccompProfile.type"],
        ["restricted", "Seccomp", "spec.securityContext.seccompProfile.type"],
        // No container sets a profile of its own, so none is confined.
        ["restricted", "Seccomp", "spec.containers[0].securityContext.seccompProfile.type"],
        ["restricted", "Seccomp", "spec.containers[1].securityContext.seccompProfile.type"],
        ["restricted", "Seccomp", "spec.initContainers[0].securityContext.seccompProfile.type"],
      ],
    ],
  ];
  it.each(twoLevelCases)("flags %s at each level that has the control", (_, pod, expected) => {
    expect(violations(pod, "baseline")).toEqual(expected.filter(([level]) => level === "baseline"));
    expect(violations(pod, "restricted")).toEqual(expected);
  });

  const restrictedCases: Case[] = [
    [
      "a volume type outside the list",
      breaking((pod) => void pod.spec.volumes!.push({ name: "nfs", nfs: { server: "nfs", path: "/" } })),
      [["Volume Types", "spec.volumes[8]"]],
    ],
    [
      "privilege escalation left unset",
      breaking((pod) => void delete app(pod).allowPrivilegeEscalation),
      [["Privilege Escalation", "spec.containers[0].securityContext.allowPrivilegeEscalation"]],
    ],
    [
      "privilege escalation allowed in an init container",
      breaking((pod) => void (pod.spec.initContainers![0]!.securityContext!.allowPrivilegeEscalation = true)),
      [["Privilege Escalation", "spec.initContainers[0].securityContext.allowPrivilegeEscalation"]],
    ],
    [
      "a container that may run as root",
      breaking((pod) => void (pod.spec.containers[1]!.securityContext!.runAsNonRoot = false)),
      [["Running as Non-root", "spec.containers[1].securityContext.runAsNonRoot"]],
    ],
    [
      "runAsNonRoot unset on the pod and a container",
      breaking((pod) => void delete pod.spec.securityContext!.runAsNonRoot),
      [
        ["Running as Non-root", "spec.containers[0].securityContext.runAsNonRoot"],
        ["Running as Non-root", "spec.initContainers[0].securityContext.runAsNonRoot"],
      ],
    ],
    [
      "user 0 on the pod",
      breaking((pod) => void (pod.spec.securityContext!.runAsUser = 0)),
      [["Running as Non-root user", "spec.securityContext.runAsUser"]],
    ],
    [
      "user 0 in a container",
      breaking((pod) => void (app(pod).runAsUser = 0)),
      [["Running as Non-root user", "spec.containers[0].securityContext.runAsUser"]],
    ],
    [
      "no seccomp profile anywhere",
      breaking((pod) => void delete pod.spec.securityContext!.seccompProfile),
      [
        ["Seccomp", "spec.containers[0].securityContext.seccompProfile.type"],
        ["Seccomp", "spec.containers[1].securityContext.seccompProfile.type"],
        ["Seccomp", "spec.initContainers[0].securityContext.seccompProfile.type"],
      ],
    ],
    [
      "capabilities kept",
      breaking((pod) => void (pod.spec.containers[1]!.securityContext!.capabilities = { drop: ["NET_RAW"] })),
      [["Capabilities", "spec.containers[1].securityContext.capabilities.drop"]],
    ],
    [
      "a baseline capability added",
      breaking((pod) => void (app(pod).capabilities!.add = ["CHOWN"])),
      [["Capabilities", "spec.containers[0].securityContext.capabilities.add[0]"]],
    ],
  ];
  it.each(restrictedCases)("flags %s under restricted only", (_, pod, expected) => {
    expect(violations(pod, "baseline")).toEqual([]);
    expect(violations(pod, "restricted")).toEqual(expected.map(([control, path]) => ["restricted", control, path]));
  });

  it("takes container profiles in place of the pod's, and exempts Windows pods from the Linux-only controls", () => {
    const everyContainerConfined = breaking((pod) => {
      delete pod.spec.securityContext!.seccompProfile;
      for (const container of [...pod.spec.containers, ...pod.spec.initContainers!])
        container.securityContext!.seccompProfile = { type: "Localhost", localhostProfile: "profiles/app.json" };
    });
    expect(violations(everyContainerConfined, "restricted")).toEqual([]);
    const windows = breaking((pod) => {
      pod.spec.os = { name: "windows" };
      delete pod.spec.securityContext!.seccompProfile;
      for (const container of [...pod.spec.containers, ...pod.spec.initContainers!]) container.securityContext = {};
      pod.spec.securityContext!.runAsUser = 0;
    });
    expect(violations(windows, "restricted")).toEqual([["restricted", "Running as Non-root user", "spec.securityContext.runAsUser"]]);
  });

  it("says what it found", () => {
    const pod = breaking((pod) => void (app(pod).allowPrivilegeEscalation = true));
    expect(podSecurityViolations(pod, "restricted")).toEqual([
      {
        level: "restricted",
        control: "Privilege Escalation",
        path: "spec.containers[0].securityContext.allowPrivilegeEscalation",
        found: "true",
      },
    ]);
  });
});
