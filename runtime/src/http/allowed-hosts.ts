/**
 * Which `Host` a trainfleet HTTP server answers to, against DNS rebinding: a web page on
 * evil.example whose name its owner re-points at 127.0.0.1 can make the browser send
 * requests to a local server, but they still say `Host: evil.example`. So a request is
 * answered only when its Host is
 *
 * - an IP literal (a rebinding page has a name, not an address, as its origin),
 * - `localhost` or a name under `.localhost` (browsers resolve those to loopback themselves;
 *   `kubectl port-forward` URLs use them),
 * - a Kubernetes Service name (under `.svc`: no public DNS name ends so, so no page can
 *   have one as its origin; the operator reaches a coordinator as NAME.NAMESPACE.svc),
 * - or one of the names the server was given (the listen host when it is a name, and a
 *   process's `--allowed-hosts`).
 */
import { isIP } from "node:net";

/** The host part of a Host header or an authority ("name:port", "[v6]:port"), lowercased, without a trailing dot; undefined if it is not one. */
export function hostName(authority: string): string | undefined {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+))(?::\d{1,5})?$/.exec(authority.trim());
  if (match === null) return undefined;
  const v6 = match[1];
  if (v6 !== undefined) return isIP(v6) === 6 ? v6.toLowerCase() : undefined;
  const name = match[2]!.toLowerCase().replace(/\.$/, "");
  return /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/.test(name) ? name : undefined;
}

/** A checker for the names in `allowed` (besides IP literals, localhost and *.svc); each is a host name, without a port. */
export function allowedHosts(allowed: readonly string[]): (authority: string) => boolean {
  const names = new Set(allowed.map((name) => name.trim().toLowerCase().replace(/\.$/, "")).filter((name) => name !== ""));
  return (authority) => {
    const name = hostName(authority);
    if (name === undefined) return false;
    return isIP(name) !== 0 || name === "localhost" || name.endsWith(".localhost") || name.endsWith(".svc") || names.has(name);
  };
}
