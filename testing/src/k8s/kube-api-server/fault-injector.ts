/**
 * Faults a test asks for: answer the next N requests matching a verb/resource/name with an HTTP
 * error (500, 409, 429, ...) carrying the Status the real server would send for that code,
 * instead of serving them. Matching watches fail before their stream starts.
 */
import type { ApiStatusError } from "./api-status.js";
import { injected } from "./api-status.js";
import type { ResourceRoute, Verb } from "./request-route.js";

export interface FaultMatch {
  verb?: Verb | readonly Verb[];
  /** The plural ("pods", "trainingjobs"). */
  resource?: string;
  /** "status" or "scale"; null matches only requests to the main resource. */
  subresource?: string | null;
  apiGroup?: string;
  namespace?: string;
  name?: string;
}

export interface Fault {
  /** The HTTP status to answer with. */
  code: number;
  /** How many matching requests fail (default 1). */
  times?: number;
  message?: string;
  /** Sent as a Retry-After header and in the Status details (for 429 and 503). */
  retryAfterSeconds?: number;
}

export interface InjectedFault {
  /** How many more matching requests will fail. */
  remaining(): number;
  cancel(): void;
}

export interface FaultInjector {
  failNext(match: FaultMatch, fault: Fault): InjectedFault;
  /** The error to answer `route` with, if a rule matches (using up one of its times). */
  take(route: ResourceRoute): ApiStatusError | undefined;
}

function matches(match: FaultMatch, route: ResourceRoute): boolean {
  const verbs = match.verb === undefined ? undefined : typeof match.verb === "string" ? [match.verb] : match.verb;
  if (verbs !== undefined && !verbs.includes(route.verb)) return false;
  if (match.resource !== undefined && match.resource !== route.resource.plural) return false;
  if (match.apiGroup !== undefined && match.apiGroup !== route.resource.group) return false;
  if (match.subresource !== undefined && match.subresource !== (route.subresource ?? null)) return false;
  if (match.namespace !== undefined && match.namespace !== route.namespace) return false;
  return match.name === undefined || match.name === route.name;
}

export function createFaultInjector(): FaultInjector {
  const rules: { match: FaultMatch; fault: Fault; left: number }[] = [];
  return {
    failNext(match, fault) {
      const rule = { match, fault, left: fault.times ?? 1 };
      rules.push(rule);
      return {
        remaining: () => rule.left,
        cancel: () => {
          rule.left = 0;
        },
      };
    },
    take(route) {
      const rule = rules.find((candidate) => candidate.left > 0 && matches(candidate.match, route));
      if (rule === undefined) return undefined;
      rule.left--;
      return injected(rule.fault.code, rule.fault.message, rule.fault.retryAfterSeconds);
    },
  };
}
