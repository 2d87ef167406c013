/**
 * A client-node KubeConfig for the test server: one cluster at its http:// URL, a user (anonymous,
 * or named by a bearer token that the request log records), and a context with the default namespace. client-node refuses plain http unless the
 * cluster says skipTLSVerify.
 */
import { KubeConfig } from "@kubernetes/client-node";

export function kubeConfigFor(server: string, namespace = "default", user?: string): KubeConfig {
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: "trainfleet-test", server, skipTLSVerify: true }],
    users: [user === undefined ? { name: "trainfleet-test" } : { name: "trainfleet-test", token: user }],
    contexts: [{ name: "trainfleet-test", cluster: "trainfleet-test", user: "trainfleet-test", namespace }],
    currentContext: "trainfleet-test",
  });
  return config;
}
