/**
 * A pod checked against the Pod Security Standards' "baseline" and "restricted" profiles, each
 * control as https://kubernetes.io/docs/concepts/security/pod-security-standards/ documents it:
 * its restricted fields (over containers, initContainers and ephemeralContainers where the page
 * lists them) and their allowed values, with the page's notes (a container may leave
 * runAsNonRoot or the seccomp profile unset when the pod sets it; Windows pods are exempt from
 * the restricted Privilege Escalation, Seccomp and Capabilities controls). Restricted includes
 * every baseline control. No real API server runs here, so this stands in for the PodSecurity
 * admission controller of a namespace labelled pod-security.kubernetes.io/enforce.
 */
import type { V1Container, V1EphemeralContainer, V1Pod, V1Probe, V1SecurityContext } from "@kubernetes/client-node";

export type PodSecurityLevel = "baseline" | "restricted";

export interface PodSecurityViolation {
  level: PodSecurityLevel;
  /** The control's name as the page gives it, e.g. "Privilege Escalation". */
  control: string;
  /** The field that breaks it, e.g. spec.containers[0].securityContext.allowPrivilegeEscalation. */
  path: string;
  /** What the field holds (JSON), or "undefined". */
  found: string;
}

/** Baseline Capabilities: what containers may add. */
const baselineCapabilities = new Set([
  "AUDIT_WRITE",
  "CHOWN",
  "DAC_OVERRIDE",
  "FOWNER",
  "FSETID",
  "KILL",
  "MKNOD",
  "NET_BIND_SERVICE",
  "SETFCAP",
  "SETGID",
  "SETPCAP",
  "SETUID",
  "SYS_CHROOT",
]);

/** Baseline Sysctls: the safe set (the page's list; tcp_rmem and tcp_wmem joined it in Kubernetes 1.32). */
const safeSysctls = new Set([
  "kernel.shm_rmid_forced",
  "net.ipv4.ip_local_port_range",
  "net.ipv4.ip_unprivileged_port_start",
  "net.ipv4.tcp_syncookies",
  "net.ipv4.ping_group_range",
  "net.ipv4.ip_local_reserved_ports",
  "net.ipv4.tcp_keepalive_time",
  "net.ipv4.tcp_fin_timeout",
  "net.ipv4.tcp_keepalive_intvl",
  "net.ipv4.tcp_keepalive_probes",
  "net.ipv4.tcp_rmem",
  "net.ipv4.tcp_wmem",
]);

const seLinuxTypes = new Set(["", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"]);

/** Restricted Volume Types: each volume must be one of these. */
const restrictedVolumeTypes = ["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"];

type AnyContainer = V1Container | V1EphemeralContainer;

interface Located {
  container: AnyContainer;
  /** spec.containers[0], spec.initContainers[1], ... */
  path: string;
  /** containers and initContainers (the Host Probes control does not list ephemeral containers). */
  probed: boolean;
}

function allContainers(pod: V1Pod): Located[] {
  const spec = pod.spec;
  const list = (key: "containers" | "initContainers" | "ephemeralContainers", probed: boolean) =>
    ((spec?.[key] ?? []) as AnyContainer[]).map((container, i) => ({ container, path: `spec.${key}[${i}]`, probed }));
  return [...list("containers", true), ...list("initContainers", true), ...list("ephemeralContainers", false)];
}

function shown(value: unknown): string {
  return value === undefined ? "undefined" : JSON.stringify(value);
}

/** The violations of `pod` at `level` (restricted includes baseline); none for a pod that passes. */
export function podSecurityViolations(pod: V1Pod, level: PodSecurityLevel): PodSecurityViolation[] {
  const found: PodSecurityViolation[] = [];
  const flag = (at: PodSecurityLevel, control: string, path: string, value: unknown) =>
    found.push({ level: at, control, path, found: shown(value) });
  baseline(pod, (control, path, value) => flag("baseline", control, path, value));
  if (level === "restricted") restricted(pod, (control, path, value) => flag("restricted", control, path, value));
  return found;
}

type Flag = (control: string, path: string, value: unknown) => void;

function baseline(pod: V1Pod, flag: Flag): void {
  const spec = pod.spec;
  const podContext = spec?.securityContext;
  const containers = allContainers(pod);
  const contexts: Array<{ context: V1SecurityContext | undefined; path: string }> = [
    { context: podContext as V1SecurityContext | undefined, path: "spec.securityContext" },
    ...containers.map(({ container, path }) => ({ context: container.securityContext, path: `${path}.securityContext` })),
  ];

  for (const { context, path } of contexts) {
    const hostProcess = context?.windowsOptions?.hostProcess;
    if (hostProcess !== undefined && hostProcess !== false) flag("HostProcess", `${path}.windowsOptions.hostProcess`, hostProcess);
  }
  for (const field of ["hostNetwork", "hostPID", "hostIPC"] as const) {
    const value = spec?.[field];
    if (value !== undefined && value !== false) flag("Host Namespaces", `spec.${field}`, value);
  }
  for (const { container, path } of containers) {
    const context = container.securityContext;
    if (context?.privileged !== undefined && context.privileged !== false)
      flag("Privileged Containers", `${path}.securityContext.privileged`, context.privileged);
    (context?.capabilities?.add ?? []).forEach((capability, i) => {
      if (!baselineCapabilities.has(capability)) flag("Capabilities", `${path}.securityContext.capabilities.add[${i}]`, capability);
    });
    (container.ports ?? []).forEach((port, i) => {
      if (port.hostPort !== undefined && port.hostPort !== 0) flag("Host Ports", `${path}.ports[${i}].hostPort`, port.hostPort);
    });
    if (context?.procMount !== undefined && context.procMount !== "Default")
      flag("/proc Mount Type", `${path}.securityContext.procMount`, context.procMount);
  }
  (spec?.volumes ?? []).forEach((volume, i) => {
    if (volume.hostPath !== undefined) flag("HostPath Volumes", `spec.volumes[${i}].hostPath`, volume.hostPath);
  });
  for (const { container, path, probed } of containers) if (probed) hostProbes(container as V1Container, path, flag);
  for (const { context, path } of contexts) {
    const appArmor = context?.appArmorProfile?.type;
    if (appArmor !== undefined && appArmor !== "RuntimeDefault" && appArmor !== "Localhost")
      flag("AppArmor", `${path}.appArmorProfile.type`, appArmor);
    const seLinux = context?.seLinuxOptions;
    if (seLinux?.type !== undefined && !seLinuxTypes.has(seLinux.type)) flag("SELinux", `${path}.seLinuxOptions.type`, seLinux.type);
    for (const field of ["user", "role"] as const)
      if (seLinux?.[field] !== undefined && seLinux[field] !== "") flag("SELinux", `${path}.seLinuxOptions.${field}`, seLinux[field]);
    const seccomp = context?.seccompProfile?.type;
    if (seccomp !== undefined && seccomp !== "RuntimeDefault" && seccomp !== "Localhost")
      flag("Seccomp", `${path}.seccompProfile.type`, seccomp);
  }
  for (const [key, value] of Object.entries(pod.metadata?.annotations ?? {})) {
    if (!key.startsWith("container.apparmor.security.beta.kubernetes.io/")) continue;
    if (value !== "runtime/default" && !value.startsWith("localhost/")) flag("AppArmor", `metadata.annotations['${key}']`, value);
  }
  (podContext?.sysctls ?? []).forEach((sysctl, i) => {
    if (!safeSysctls.has(sysctl.name)) flag("Sysctls", `spec.securityContext.sysctls[${i}].name`, sysctl.name);
  });
}

/** Host Probes / Lifecycle Hooks: no host in a probe's or a hook's httpGet or tcpSocket. */
function hostProbes(container: V1Container, path: string, flag: Flag): void {
  const handlers: Array<[string, Pick<V1Probe, "httpGet" | "tcpSocket"> | undefined]> = [
    ["livenessProbe", container.livenessProbe],
    ["readinessProbe", container.readinessProbe],
    ["startupProbe", container.startupProbe],
    ["lifecycle.postStart", container.lifecycle?.postStart],
    ["lifecycle.preStop", container.lifecycle?.preStop],
  ];
  for (const [name, handler] of handlers) {
    for (const kind of ["httpGet", "tcpSocket"] as const) {
      const host = handler?.[kind]?.host;
      if (host !== undefined && host !== "") flag("Host Probes / Lifecycle Hooks", `${path}.${name}.${kind}.host`, host);
    }
  }
}

function restricted(pod: V1Pod, flag: Flag): void {
  const spec = pod.spec;
  const podContext = spec?.securityContext;
  const containers = allContainers(pod);
  const linux = spec?.os?.name !== "windows";

  (spec?.volumes ?? []).forEach((volume, i) => {
    const fields = volume as unknown as Record<string, unknown>;
    if (!restrictedVolumeTypes.some((type) => fields[type] !== undefined && fields[type] !== null)) {
      const types = Object.keys(fields).filter((key) => key !== "name");
      flag("Volume Types", `spec.volumes[${i}]`, types.join(","));
    }
  });

  // Running as Non-root: the pod's true covers containers that leave it unset; false anywhere is refused.
  const podNonRoot = podContext?.runAsNonRoot;
  if (podNonRoot === false) flag("Running as Non-root", "spec.securityContext.runAsNonRoot", podNonRoot);
  for (const { container, path } of containers) {
    const value = container.securityContext?.runAsNonRoot;
    if (value === false || (value === undefined && podNonRoot !== true))
      flag("Running as Non-root", `${path}.securityContext.runAsNonRoot`, value);
  }

  if (podContext?.runAsUser === 0) flag("Running as Non-root user", "spec.securityContext.runAsUser", 0);
  for (const { container, path } of containers)
    if (container.securityContext?.runAsUser === 0) flag("Running as Non-root user", `${path}.securityContext.runAsUser`, 0);

  if (!linux) return;
  for (const { container, path } of containers) {
    const context = container.securityContext;
    if (context?.allowPrivilegeEscalation !== false)
      flag("Privilege Escalation", `${path}.securityContext.allowPrivilegeEscalation`, context?.allowPrivilegeEscalation);
  }

  // Seccomp: RuntimeDefault or Localhost, on the pod (containers may leave it unset then) or on every container.
  const allowed = (type: string | undefined) => type === "RuntimeDefault" || type === "Localhost";
  const podSeccomp = podContext?.seccompProfile?.type;
  if (podSeccomp !== undefined && !allowed(podSeccomp)) flag("Seccomp", "spec.securityContext.seccompProfile.type", podSeccomp);
  for (const { container, path } of containers) {
    const type = container.securityContext?.seccompProfile?.type;
    if (type === undefined ? !allowed(podSeccomp) : !allowed(type)) flag("Seccomp", `${path}.securityContext.seccompProfile.type`, type);
  }

  for (const { container, path } of containers) {
    const capabilities = container.securityContext?.capabilities;
    if (!(capabilities?.drop ?? []).includes("ALL")) flag("Capabilities", `${path}.securityContext.capabilities.drop`, capabilities?.drop);
    (capabilities?.add ?? []).forEach((capability, i) => {
      if (capability !== "NET_BIND_SERVICE") flag("Capabilities", `${path}.securityContext.capabilities.add[${i}]`, capability);
    });
  }
}
