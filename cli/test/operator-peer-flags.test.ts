/**
 * The operator's own identity for each job's NetworkPolicy: what the chart passes (its
 * release namespace and selector labels, rendered by the real helm) parses into a peer that
 * names exactly the Deployment's pods and namespace; bad values are refused naming the flag.
 */

import type { JsonObject } from "@trainfleet/k8s";
import { defaultOperatorPeer, valueAt } from "@trainfleet/k8s";
import { helm } from "@trainfleet/testing/fixtures/helm";
import { parseManifests, repoPath } from "@trainfleet/testing/manifests";
import { describe, expect, it } from "vitest";
import { operatorCommand } from "../src/commands/operator.js";
import { parseFlags } from "../src/flags.js";
import { operatorPeerFromFlags } from "../src/operator-peer-flags.js";

const peerOf = (argv: string[], env: Record<string, string> = {}) =>
  operatorPeerFromFlags(parseFlags(operatorCommand.flags, argv, env), defaultOperatorPeer.podLabels);

describe("--operator-namespace and --operator-pod-labels", () => {
  it("name the chart's operator pods in its release namespace, as the chart passes them", () => {
    const result = helm([
      "template",
      "ops",
      repoPath("helm", "trainfleet"),
      "--namespace",
      "ml-platform",
      "--show-only",
      "templates/deployment.yaml",
    ]);
    expect(result.code, result.stderr).toBe(0);
    const deployment = parseManifests(result.stdout, "helm template")[0]!;
    const [container] = valueAt(deployment, "spec.template.spec.containers") as JsonObject[];
    const args = container!["args"] as string[];
    const podLabels = valueAt(deployment, "spec.template.metadata.labels") as JsonObject;
    const peer = peerOf(args.slice(1));
    expect(peer?.namespace).toBe("ml-platform");
    // Every label the policy asks for is on the operator's pods, the release's own instance label among them.
    expect(podLabels).toMatchObject(peer!.podLabels);
    expect(peer!.podLabels).toMatchObject({ "app.kubernetes.io/instance": "ops", "app.kubernetes.io/component": "operator" });
  });

  it("leave the default (the chart's labels, any namespace) when neither is given, and take the chart's labels with a namespace alone", () => {
    expect(peerOf([])).toBeUndefined();
    expect(peerOf([], { TRAINFLEET_OPERATOR_NAMESPACE: "ops" })).toEqual({ namespace: "ops", podLabels: defaultOperatorPeer.podLabels });
    expect(peerOf(["--operator-pod-labels", "app=op, tier=control"])).toEqual({ podLabels: { app: "op", tier: "control" } });
  });

  it.each([
    [
      ["--operator-namespace", "ML_Ops"],
      "--operator-namespace: \"ML_Ops\" is not a namespace name (at most 63 lower-case letters, digits and '-')",
    ],
    [
      ["--operator-pod-labels", "app"],
      '--operator-pod-labels: "app" is not key=value; give key=value,... (e.g. app.kubernetes.io/component=operator)',
    ],
    [
      ["--operator-pod-labels", "-app=x"],
      "--operator-pod-labels: key \"-app\": name \"-app\" is not 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
    ],
    [
      ["--operator-pod-labels", "Example.com/app=x"],
      '--operator-pod-labels: key "Example.com/app": prefix "Example.com" is not a DNS subdomain',
    ],
    [
      ["--operator-pod-labels", "app=a b"],
      "--operator-pod-labels: the value of app, \"a b\", is not a label value: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
    ],
    [["--operator-pod-labels", "app=x,app=y"], "--operator-pod-labels: app is given twice"],
    [["--operator-pod-labels", ","], "--operator-pod-labels: no label given; give key=value,... or leave the flag out"],
  ])("refuse %j naming the flag", (argv, message) => {
    expect(() => peerOf(argv)).toThrow(message);
  });
});
