export { humanDuration, printerColumns } from "./commands/get.js";
