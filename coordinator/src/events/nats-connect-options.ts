/**
 * What nats.js needs to connect, from a NATS URL that may carry credentials as userinfo
 * (nats://user:password@host:4222, or nats://token@host:4222): nats.js ignores userinfo,
 * so it is taken out of the servers and given as user/pass or token, and the URL that
 * every log line and error shows is the one without it.
 */
import { redactUrl, splitUserinfo } from "@trainfleet/runtime";

export interface NatsConnectOptions {
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
}

/** Connect options for `url` (comma-separated servers, the first userinfo for all), and the URL as it may be shown. */
export function natsConnectOptions(url: string): { connect: NatsConnectOptions; shown: string } {
  const { urls, userinfo } = splitUserinfo(url);
  const servers = urls.split(",");
  const shown = redactUrl(url);
  if (userinfo === "") return { connect: { servers }, shown };
  const colon = userinfo.indexOf(":");
  if (colon < 0) return { connect: { servers, token: decodeURIComponent(userinfo) }, shown };
  return {
    connect: { servers, user: decodeURIComponent(userinfo.slice(0, colon)), pass: decodeURIComponent(userinfo.slice(colon + 1)) },
    shown,
  };
}
