/** The PodGroup APIs of gang schedulers the operator can create PodGroups with. */
export type PodGroupApi = "volcano" | "coscheduling";
export const podGroupApis: readonly PodGroupApi[] = ["volcano", "coscheduling"];
