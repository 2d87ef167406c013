/**
 * URLs' userinfo (nats://user:password@host:4222), the one place a secret hides in an
 * address: `redactUrl` takes it out of any text before it is logged, printed or put on a
 * command line; `splitUserinfo` and `withUserinfo` move it between a URL and a file or the
 * environment, so that a process gets the address and its credentials separately.
 * Works on a comma-separated list of URLs as on one, and on any text that contains URLs.
 */
import type { Logger } from "./logger.js";

/** scheme:// then userinfo (up to the last "@" before the host; no "/", "," or space in it). */
const userinfo = /([a-z][a-z0-9+.-]*:\/\/)[^/\s,]*@/gi;

/** `text` with every URL's userinfo removed: "nats://u:p@h:4222,nats://h2:4222" -> "nats://h:4222,nats://h2:4222". */
export function redactUrl(text: string): string {
  return text.replace(userinfo, "$1");
}

/** The URL(s) without userinfo, and the userinfo (still URL-encoded) of the first that has one ("" when none does). */
export function splitUserinfo(urls: string): { urls: string; userinfo: string } {
  const found = new RegExp(userinfo.source, "i").exec(urls);
  const info = found === null ? "" : found[0].slice(found[1]!.length, -1);
  return { urls: redactUrl(urls), userinfo: info };
}

/** Each URL of the list with `info` (URL-encoded user:password, or a token) as its userinfo. */
export function withUserinfo(urls: string, info: string): string {
  if (info === "") return urls;
  return redactUrl(urls).replace(/([a-z][a-z0-9+.-]*:\/\/)/gi, `$1${info}@`);
}

/** `user:password` (or a token) as URL userinfo: each part percent-encoded. */
export function encodeUserinfo(credentials: string): string {
  const colon = credentials.indexOf(":");
  if (colon < 0) return encodeURIComponent(credentials);
  return `${encodeURIComponent(credentials.slice(0, colon))}:${encodeURIComponent(credentials.slice(colon + 1))}`;
}

/**
 * A logger that takes URLs' userinfo out of every message and string field (nested ones
 * too) before they reach `logger`: for a process that holds credentials in a URL, so that
 * code which logs the URL, or an error that quotes it, cannot leak them.
 */
export function redactingLogger(logger: Logger): Logger {
  const clean = (value: unknown): unknown => {
    if (typeof value === "string") return redactUrl(value);
    if (value instanceof Error) return redactUrl(value.message);
    if (Array.isArray(value)) return value.map(clean);
    if (value !== null && typeof value === "object" && [Object.prototype, null].includes(Object.getPrototypeOf(value)))
      return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, typeof inner === "function" ? inner : clean(inner)]));
    return value;
  };
  const fields = (value: object) => clean(value) as object;
  return {
    debug: (f, message) => logger.debug(fields(f), redactUrl(message)),
    info: (f, message) => logger.info(fields(f), redactUrl(message)),
    warn: (f, message) => logger.warn(fields(f), redactUrl(message)),
    error: (f, message) => logger.error(fields(f), redactUrl(message)),
    child: (f) => redactingLogger(logger.child(fields(f))),
  };
}
