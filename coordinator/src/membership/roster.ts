/**
 * Which workers train in a new generation: those that had ranks keep their order (so a
 * loss renumbers only the ranks after it), then the others in the order they registered,
 * up to workers.max_workers. The rest wait as standbys.
 */
import type { Member } from "./members.js";

export interface Roster<T = Member> {
  /** ranked[r] gets rank r. */
  ranked: T[];
  standby: T[];
}

/** `previous`: the ranks of the generation before; `live`: every live worker, in registration order. */
export function chooseRanks<T>(previous: readonly T[], live: readonly T[], maxWorkers: number): Roster<T> {
  const alive = new Set(live);
  const kept = previous.filter((member) => alive.has(member));
  const ordered = [...kept, ...live.filter((member) => !kept.includes(member))];
  return { ranked: ordered.slice(0, maxWorkers), standby: ordered.slice(maxWorkers) };
}
