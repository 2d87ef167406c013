/**
 * @trainfleet/cli: the trainfleet binary (its entry is main.ts); this entry only lends the test suites the printer columns they check against the CRD.
 * No package imports it.
 */
export { humanDuration, printerColumns } from "./commands/get.js";
