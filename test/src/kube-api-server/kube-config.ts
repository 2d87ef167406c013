/**
 * A client-node KubeConfig for the test server: one cluster at its http:// URL, an anonymous
 * user, and a context with the default namespace. client-node refuses plain http unless the
 * cluster says skipTLSVerify.
 */
import { KubeConfig } from "@kubernetes/client-node";

export function kubeConfigFor(server: string, namespace = "default"): KubeConfig {
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: "trainfleet-test", server, skipTLSVerify: true }],
    users: [{ name: "trainfleet-test" }],
    contexts: [{ name: "trainfleet-test", cluster: "trainfleet-test", user: "trainfleet-test", namespace }],
    currentContext: "trainfleet-test",
  });
  return config;
}
