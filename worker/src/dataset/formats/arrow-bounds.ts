/**
 * Bounds of an Arrow IPC footer and record batch message, checked before apache-arrow reads
 * them. apache-arrow loops over whatever vector length the bytes claim and follows table
 * offsets without a limit: a damaged footer that claims four billion metadata entries
 * keeps it busy for minutes, and a record batch that claims 16 MiB of metadata for a
 * block of a few kilobytes takes seconds to refuse. This reads the flatbuffer tables that
 * apache-arrow reads (the Footer, Schema, Field, KeyValue and Message, RecordBatch tables
 * of Arrow's File.fbs, Schema.fbs and Message.fbs) and checks that every vector it would
 * loop over lies inside the bytes and that the fields, followed as a tree, are fewer than
 * the bytes could hold. A problem is returned as a phrase for the DATA_LOSS message.
 */

/** A flatbuffer table reader that throws on any offset outside the bytes. */
class Tables {
  readonly #view: DataView;
  /** Tables visited: damaged offsets can make a tree of fields a graph with shared children. */
  #visits = 0;

  constructor(readonly bytes: Uint8Array) {
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  #u32(at: number): number {
    if (at < 0 || at + 4 > this.bytes.byteLength)
      throw new RangeError(`an offset at byte ${at} lies outside the ${this.bytes.byteLength} bytes`);
    return this.#view.getUint32(at, true);
  }

  /** The table that the offset at `at` points to. */
  table(at: number): number {
    if (++this.#visits > this.bytes.byteLength / 4) throw new RangeError("its tables refer to each other in a loop");
    const table = at + this.#u32(at);
    this.#u32(table);
    return table;
  }

  /** Where field `index` of `table` lies, or undefined when the field is absent. */
  field(table: number, index: number): number | undefined {
    const vtable = table - this.#view.getInt32(table, true);
    const vtableBytes = this.#u16(vtable);
    if (4 + 2 * index + 2 > vtableBytes) return undefined;
    const offset = this.#u16(vtable + 4 + 2 * index);
    return offset === 0 ? undefined : table + offset;
  }

  /** The elements of the vector that field `index` of `table` points to, each `elementBytes` long: where they start and how many. */
  vector(table: number, index: number, elementBytes: number): { start: number; length: number } {
    const at = this.field(table, index);
    if (at === undefined) return { start: 0, length: 0 };
    const vector = at + this.#u32(at);
    const length = this.#u32(vector);
    if (vector + 4 + length * elementBytes > this.bytes.byteLength)
      throw new RangeError(`a vector at byte ${vector} claims ${length} elements, more than the ${this.bytes.byteLength} bytes hold`);
    return { start: vector + 4, length };
  }

  /** The tables of the vector that field `index` of `table` points to. */
  tables(table: number, index: number): number[] {
    const { start, length } = this.vector(table, index, 4);
    return Array.from({ length }, (_, i) => this.table(start + 4 * i));
  }

  /** The signed 64-bit integer at `at`. */
  int64(at: number): bigint {
    if (at < 0 || at + 8 > this.bytes.byteLength)
      throw new RangeError(`a value at byte ${at} lies outside the ${this.bytes.byteLength} bytes`);
    return this.#view.getBigInt64(at, true);
  }

  #u16(at: number): number {
    if (at < 0 || at + 2 > this.bytes.byteLength)
      throw new RangeError(`an offset at byte ${at} lies outside the ${this.bytes.byteLength} bytes`);
    return this.#view.getUint16(at, true);
  }
}

const Footer = { schema: 1, dictionaries: 2, recordBatches: 3, customMetadata: 4 };
const Schema = { fields: 1, customMetadata: 2, features: 3 };
const Field = { dictionary: 4, children: 5, customMetadata: 6 };
const Message = { headerType: 1, header: 2, customMetadata: 4 };
const RecordBatch = { length: 0, nodes: 1, buffers: 2, variadicBufferCounts: 4 };
/** Block, FieldNode and Buffer are structs of these sizes. */
const blockBytes = 24;
const nodeBytes = 16;
const bufferBytes = 16;
const messageHeaderRecordBatch = 3;

/** Why apache-arrow must not decode `footer` (the flatbuffer between the file's end and its length), or undefined. */
export function arrowFooterProblem(footer: Uint8Array): string | undefined {
  return problemOf(() => {
    const tables = new Tables(footer);
    const root = tables.table(0);
    tables.vector(root, Footer.dictionaries, blockBytes);
    tables.vector(root, Footer.recordBatches, blockBytes);
    tables.tables(root, Footer.customMetadata);
    const schemaAt = tables.field(root, Footer.schema);
    if (schemaAt === undefined) return;
    const schema = tables.table(schemaAt);
    tables.tables(schema, Schema.customMetadata);
    tables.vector(schema, Schema.features, 8);
    const fields = tables.tables(schema, Schema.fields);
    while (fields.length > 0) {
      const field = fields.pop()!;
      tables.tables(field, Field.customMetadata);
      const dictionary = tables.field(field, Field.dictionary);
      if (dictionary !== undefined) tables.table(dictionary);
      fields.push(...tables.tables(field, Field.children));
    }
  });
}

/**
 * Why apache-arrow must not decode `block` (a record batch message: continuation, length,
 * metadata, body) of `records` records, or undefined. Besides the vectors: neither the
 * batch nor a column may claim more values than the manifest's records or the body could
 * hold (eight a byte, as bits), which apache-arrow would allocate before it reads a byte.
 */
export function arrowRecordBatchProblem(block: Uint8Array, records: number): string | undefined {
  if (block.byteLength < 8) return `it is ${block.byteLength} bytes, shorter than a message's prefix`;
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  if (view.getUint32(0, true) !== 0xffffffff) return "it does not start with a message's continuation marker";
  const metadataBytes = view.getInt32(4, true);
  if (metadataBytes <= 0 || metadataBytes > block.byteLength - 8)
    return `its message claims ${metadataBytes} bytes of metadata, but the block holds ${block.byteLength - 8}`;
  return problemOf(() => {
    const tables = new Tables(block.subarray(8, 8 + metadataBytes));
    const message = tables.table(0);
    tables.tables(message, Message.customMetadata);
    const typeAt = tables.field(message, Message.headerType);
    const headerAt = tables.field(message, Message.header);
    if (typeAt === undefined || headerAt === undefined || tables.bytes[typeAt] !== messageHeaderRecordBatch)
      throw new RangeError("its message is not a record batch");
    const batch = tables.table(headerAt);
    const most = Math.max(records, 8 * (block.byteLength - 8 - metadataBytes));
    const lengthAt = tables.field(batch, RecordBatch.length);
    const length = lengthAt === undefined ? 0 : Number(tables.int64(lengthAt));
    if (length < 0 || length > most) throw new RangeError(`its record batch claims ${length} records, more than the block holds`);
    const nodes = tables.vector(batch, RecordBatch.nodes, nodeBytes);
    for (let i = 0; i < nodes.length; i++) {
      const values = Number(tables.int64(nodes.start + i * nodeBytes));
      if (values < 0 || values > most) throw new RangeError(`column node ${i} claims ${values} values, more than the block holds`);
    }
    tables.vector(batch, RecordBatch.buffers, bufferBytes);
    tables.vector(batch, RecordBatch.variadicBufferCounts, 8);
  });
}

function problemOf(check: () => void): string | undefined {
  try {
    check();
    return undefined;
  } catch (error) {
    if (error instanceof RangeError) return error.message;
    throw error;
  }
}
