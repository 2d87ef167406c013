/** What the first line of a CSV file is taken to be (`trainfleet dataset convert --header`); auto decides from the line. */
export type CsvHeader = "auto" | "names" | "none" | "sklearn";
export const csvHeaders: readonly CsvHeader[] = ["auto", "names", "none", "sklearn"];
