/**
 * A numeric CSV file (gzipped or not) as a record table of float64 columns, streamed through
 * csv-parse so only the numbers are held. The first line may be column names, nothing
 * (columns are then c0, c1, ...), or scikit-learn's line of counts and class names
 * (n_samples,n_features,name,...), which is checked against the rows and skipped.
 */
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import type { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { Code, TrainfleetError } from "@trainfleet/proto";
import { parse } from "csv-parse";
import type { CsvHeader } from "./csv-header.js";
import type { RecordTable } from "./record-table.js";

export interface CsvInput {
  table: RecordTable;
  /** What the first line turned out to be. */
  header: Exclude<CsvHeader, "auto">;
}

export async function readCsv(path: string, header: CsvHeader, signal?: AbortSignal): Promise<CsvInput> {
  const lines = parse({ bom: true, skip_empty_lines: true, relax_column_count: true, trim: true, info: true });
  const input = (await isGzip(path)) ? createReadStream(path).pipe(createGunzip()) : createReadStream(path);
  input.on("error", (error: Error) => lines.destroy(error));
  input.pipe(lines);
  const rows = lines as Readable & AsyncIterable<{ record: string[]; info: { lines: number } }>;
  const iterator = rows[Symbol.asyncIterator]();
  const fail = (line: number, problem: string) => new TrainfleetError(Code.INVALID_ARGUMENT, `${path}:${line}: ${problem}`);
  try {
    const first = await next(iterator, path);
    const second = await next(iterator, path);
    if (first === undefined) throw new TrainfleetError(Code.INVALID_ARGUMENT, `${path}: the file holds no rows`);
    const kind = header === "auto" ? detectHeader(first.record, second?.record) : header;
    let names: string[] | undefined;
    const pending: { record: string[]; info: { lines: number } }[] = second === undefined ? [] : [second];
    let expectedRecords: number | undefined;
    if (kind === "sklearn") {
      expectedRecords = Number(first.record[0]);
      const following = pending.shift();
      if (following !== undefined && !following.record.every(isNumber)) names = following.record;
      else if (following !== undefined) pending.unshift(following);
    } else if (kind === "names") names = first.record;
    else pending.unshift(first);
    const columns = new ColumnBuilder(names?.length ?? pending[0]?.record.length ?? 0);
    const add = ({ record, info }: { record: string[]; info: { lines: number } }) => {
      if (record.length !== columns.width) throw fail(info.lines, `has ${record.length} fields, but the file's rows have ${columns.width}`);
      record.forEach((field, i) => {
        if (!isNumber(field)) throw fail(info.lines, `field ${i + 1} ("${field}") is not a number; only numeric CSV converts`);
      });
      columns.push(record.map(Number));
    };
    pending.forEach(add);
    for (let row = await next(iterator, path); row !== undefined; row = await next(iterator, path)) {
      signal?.throwIfAborted();
      add(row);
    }
    if (expectedRecords !== undefined && expectedRecords !== columns.records) {
      throw fail(1, `the scikit-learn header says ${expectedRecords} rows, but the file has ${columns.records}`);
    }
    const columnNames = names ?? Array.from({ length: columns.width }, (_, i) => `c${i}`);
    checkNames(columnNames, path);
    return { table: columns.table(columnNames), header: kind };
  } finally {
    input.destroy();
    lines.destroy();
  }
}

function detectHeader(first: string[], second: string[] | undefined): Exclude<CsvHeader, "auto"> {
  // scikit-learn: n_samples,n_features[,class names]; each row then holds the features and the target.
  const counts = first.length >= 2 && /^\d+$/.test(first[0]!) && /^\d+$/.test(first[1]!);
  const sklearn = counts && second !== undefined && second.length === Number(first[1]) + 1;
  if (sklearn && (second.length !== first.length || first.some((field) => field === ""))) return "sklearn";
  return first.every(isNumber) ? "none" : "names";
}

function isNumber(field: string): boolean {
  return field !== "" && Number.isFinite(Number(field));
}

function checkNames(names: string[], path: string): void {
  names.forEach((name, i) => {
    if (name === "" || names.indexOf(name) !== i) {
      throw new TrainfleetError(
        Code.INVALID_ARGUMENT,
        `${path}:1: column ${i + 1} is named "${name}", ${name === "" ? "empty" : "twice"}; give unique names, or --header none`,
      );
    }
  });
}

async function next<T>(iterator: AsyncIterator<T>, path: string): Promise<T | undefined> {
  try {
    const step = await iterator.next();
    return step.done ? undefined : step.value;
  } catch (error) {
    throw new TrainfleetError(Code.INVALID_ARGUMENT, `${path}: cannot be read as CSV (${(error as Error).message})`, { cause: error });
  }
}

async function isGzip(path: string): Promise<boolean> {
  const handle = await open(path, "r").catch((error: NodeJS.ErrnoException) => {
    throw new TrainfleetError(
      error.code === "ENOENT" ? Code.NOT_FOUND : Code.INVALID_ARGUMENT,
      `${path}: ${error.code === "ENOENT" ? "no such file" : error.message}`,
      { cause: error },
    );
  });
  try {
    const { buffer, bytesRead } = await handle.read(new Uint8Array(2), 0, 2, 0);
    return bytesRead === 2 && buffer[0] === 0x1f && buffer[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

/** Columns of float64 that grow by doubling as rows arrive. */
class ColumnBuilder {
  records = 0;
  #columns: Float64Array[];

  constructor(readonly width: number) {
    this.#columns = Array.from({ length: width }, () => new Float64Array(1024));
  }

  push(values: number[]): void {
    if (this.records === this.#columns[0]?.length) {
      this.#columns = this.#columns.map((column) => {
        const grown = new Float64Array(column.length * 2);
        grown.set(column);
        return grown;
      });
    }
    values.forEach((value, i) => {
      this.#columns[i]![this.records] = value;
    });
    this.records++;
  }

  table(names: string[]): RecordTable {
    return {
      records: this.records,
      columns: names.map((name, i) => ({ name, width: 1, values: this.#columns[i]!.slice(0, this.records) })),
    };
  }
}
