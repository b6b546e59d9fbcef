/**
 * Tabular data: CSV parsing and encoding into a float64 design matrix for a binary classifier.
 *
 * Encoding rules (documented behaviour, relied on by the explainers):
 * - A column is numeric when every non-missing cell parses as a finite number (unless listed in
 *   `categorical`); a column whose cells are mostly numbers but not all is an error naming the
 *   column, the line (data row + 1 for the header) and the cell; numeric columns are standardised with the mean / standard deviation of the
 *   TRAIN split (a column with zero train deviation is only centred).
 * - Every other column is categorical and one-hot encoded; its levels are collected over all rows
 *   (vocabulary only, no statistics) so test rows never hit an unseen level.
 * - Each raw column becomes one `FeatureGroup` (a player for Shapley explanations): a numeric group
 *   spans one encoded column, a categorical group spans its one-hot block.
 * - Missing cells (`missingMarkers`, default '', '?', 'NA', 'NaN', case-sensitive, after trimming):
 *   in a categorical column they become their own level `MISSING_LEVEL`; in a numeric column they
 *   are imputed with the train mean (0 after standardising) when `missing: 'impute'` (default) or
 *   rejected with an error naming the column and line when `missing: 'error'`.
 * - Constant columns (a single distinct value, missing cells ignored) carry no information and are
 *   dropped; they are listed in `dropped` with the reason.
 * - An infinite number ('Infinity', '-1e999') is an error naming the column and row.
 * - A missing label value is always an error. Labels must take exactly two values; class 1 is
 *   `positive` if given, else the lexicographically larger value ('>50K' for Adult, 'yes' for Bank).
 */
import { clip, DataFormatError, formatBytes } from './errors.js';
import { maxBytesOf, type DataLimits } from './inflate.js';
import { Rng } from '../util/rng.js';

/** The level a missing categorical cell is encoded as. */
export const MISSING_LEVEL = '(missing)';

/** Parsed CSV: header names and data rows of raw (unquoted, trimmed) strings. */
export interface CsvTable {
  header: string[];
  rows: string[][];
  /** The 1-based line each row starts on (parseCsv fills it; without it, row i is taken to be on line i + 2). */
  lines?: number[];
}

/**
 * Parses CSV text (RFC 4180 quoting: fields in double quotes may contain the delimiter, newlines
 * and doubled quotes). Unquoted fields are trimmed. Blank lines are skipped. Every row must have
 * as many fields as the header.
 * @example parseCsv('a,b\n1,"x,y"\n').rows // [['1', 'x,y']]
 */
export function parseCsv(text: string, delimiter = ','): CsvTable {
  if (delimiter.length !== 1 || delimiter === '"') throw new RangeError(`parseCsv: delimiter must be one character other than '"', got '${delimiter}'`);
  const records: { fields: string[]; line: number }[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false; // inside a quoted field
  let wasQuoted = false; // current field was quoted (do not trim it)
  let blank = true; // current field is only whitespace so far (tracked: trimming it at every quote is quadratic)
  let line = 1;
  let recordLine = 1;
  const endField = () => {
    fields.push(wasQuoted ? field : field.trim());
    field = '';
    wasQuoted = false;
    blank = true;
  };
  const endRecord = () => {
    endField();
    if (!(fields.length === 1 && fields[0] === '')) records.push({ fields, line: recordLine });
    fields = [];
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') { field += '"'; i++; } else { quoted = false; blank = field.trim() === ''; }
      } else {
        if (c === '\n') line++;
        field += c;
      }
    } else if (c === '"' && blank) {
      quoted = true;
      wasQuoted = true;
      blank = false;
      field = '';
    } else if (c === delimiter) {
      endField();
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endRecord();
      line++;
      recordLine = line;
    } else {
      field += c;
      if (blank && c.trim() !== '') blank = false;
    }
  }
  if (quoted) throw new SyntaxError(`parseCsv: unterminated quoted field starting on line ${recordLine}`);
  if (field !== '' || fields.length > 0) endRecord();
  if (records.length === 0) throw new SyntaxError('parseCsv: no header row (empty input)');
  const header = records[0]!.fields;
  const rows: string[][] = [];
  const lines: number[] = [];
  for (let r = 1; r < records.length; r++) {
    const rec = records[r]!;
    if (rec.fields.length !== header.length) {
      throw new SyntaxError(`parseCsv: line ${rec.line} has ${rec.fields.length} fields, the header has ${header.length}`);
    }
    rows.push(rec.fields);
    lines.push(rec.line);
  }
  return { header, rows, lines };
}

/** Options for {@link encodeTabular}. */
export interface TabularOptions {
  /** Name of the label column (e.g. 'class' for Adult, 'y' for Bank). */
  label: string;
  /** Label value that is class 1; default: the lexicographically larger of the two values. */
  positive?: string;
  /** Columns to ignore (e.g. 'fnlwgt' for the SHEAR protocol on Adult). */
  drop?: string[];
  /** Columns to treat as categorical even if all values are numbers. */
  categorical?: string[];
  /** Numeric missing cells: impute the train mean (default) or throw. */
  missing?: 'impute' | 'error';
  /** Cell values that mean "missing" (default '', '?', 'NA', 'NaN'). */
  missingMarkers?: string[];
  /** Fraction of rows in the test split (default 0.2). */
  testFraction?: number;
  /** Seed of the train/test shuffle (default 0). */
  seed?: number;
}

/** One raw column = one player: the encoded columns [start, end). */
export interface FeatureGroup {
  name: string;
  kind: 'numeric' | 'categorical';
  start: number;
  end: number;
  /** Categorical: level of each one-hot column, in column order. */
  levels?: string[];
  /** Numeric: train mean and the divisor used to standardise. */
  mean?: number;
  std?: number;
}

/** A split: `rows` × `columns` row-major float64 features and 0/1 labels. */
export interface TabularSplit {
  x: Float64Array;
  y: Uint8Array;
  rows: number;
}

/** An encoded binary-classification data set. */
export interface TabularDataset {
  /** Encoded column names: numeric columns by name, one-hot columns as 'name=level'. */
  columns: string[];
  groups: FeatureGroup[];
  /** classes[1] is the positive class. */
  classes: [string, string];
  train: TabularSplit;
  test: TabularSplit;
  /** Columns left out and why ('dropped by option' or 'constant'). */
  dropped: { name: string; reason: string }[];
  /** Missing cells per raw column (only columns with any), and how they were handled. */
  missing: { name: string; cells: number; handling: 'level' | 'imputed' }[];
}

/**
 * Encodes a parsed CSV table (see the module comment for the rules).
 * @example
 * const ds = encodeTabular(parseCsv(text), { label: 'class', drop: ['fnlwgt'] });
 * ds.groups.length // one player per raw feature column
 */
export function encodeTabular(table: CsvTable, options: TabularOptions): TabularDataset {
  const { header, rows } = table;
  const markers = new Set(options.missingMarkers ?? ['', '?', 'NA', 'NaN']);
  const testFraction = options.testFraction ?? 0.2;
  if (!(testFraction > 0 && testFraction < 1)) throw new RangeError(`encodeTabular: testFraction must be in (0, 1), got ${testFraction}`);
  const labelIndex = header.indexOf(options.label);
  if (labelIndex < 0) throw new RangeError(`encodeTabular: unknown label column '${options.label}' (columns: ${header.join(', ')})`);
  for (const name of [...(options.drop ?? []), ...(options.categorical ?? [])]) {
    if (!header.includes(name)) throw new RangeError(`encodeTabular: unknown column '${name}' (columns: ${header.join(', ')})`);
  }
  if (rows.length < 2) throw new RangeError(`encodeTabular: need at least 2 data rows, got ${rows.length}`);

  // Labels: exactly two values, none missing. Data line numbers are 1-based after the header.
  const labelValues = new Set<string>();
  rows.forEach((r, i) => {
    const v = r[labelIndex]!;
    if (markers.has(v)) throw new RangeError(`encodeTabular: missing label '${options.label}' on data row ${i + 1}`);
    labelValues.add(v);
  });
  const values = [...labelValues].sort();
  if (values.length !== 2) throw new RangeError(`encodeTabular: label '${options.label}' must have exactly 2 values, found ${values.length} (${values.slice(0, 5).join(', ')})`);
  if (options.positive !== undefined && !labelValues.has(options.positive)) {
    throw new RangeError(`encodeTabular: positive class '${options.positive}' does not occur in label '${options.label}' (values: ${values.join(', ')})`);
  }
  const positive = options.positive ?? values[1]!;
  const classes: [string, string] = [values.find((v) => v !== positive)!, positive];

  // Seeded split before any statistic is computed.
  const perm = new Rng(options.seed ?? 0, 0x7ab).permutation(rows.length);
  const testCount = Math.max(1, Math.min(rows.length - 1, Math.round(rows.length * testFraction)));
  const testRows = Array.from(perm.subarray(0, testCount));
  const trainRows = Array.from(perm.subarray(testCount));

  const dropped: { name: string; reason: string }[] = [];
  const missing: TabularDataset['missing'] = [];
  const groups: FeatureGroup[] = [];
  const columns: string[] = [];
  // Per group: how to write a raw cell into an encoded row.
  const writers: ((cell: string, out: Float64Array, offset: number) => void)[] = [];
  const sourceIndex: number[] = [];
  const forcedCategorical = new Set(options.categorical ?? []);
  const droppedByOption = new Set(options.drop ?? []);

  header.forEach((name, c) => {
    if (c === labelIndex) return;
    if (droppedByOption.has(name)) { dropped.push({ name, reason: 'dropped by option' }); return; }
    const distinct = new Set<string>();
    let missingCells = 0;
    let numericCells = 0, textCells = 0, firstText = -1;
    rows.forEach((r, i) => {
      const v = r[c]!;
      if (markers.has(v)) { missingCells++; return; }
      distinct.add(v);
      const num = Number(v);
      if (num === Infinity || num === -Infinity) throw new RangeError(`encodeTabular: infinite value '${v}' in column '${name}' on data row ${i + 1}`);
      if (Number.isNaN(num)) {
        textCells++;
        if (firstText < 0) firstText = i;
      } else numericCells++;
    });
    const numeric = !forcedCategorical.has(name) && textCells === 0;
    // A column of mostly numbers with a stray word is a typo, not a categorical column: say where.
    if (!forcedCategorical.has(name) && textCells > 0 && numericCells > textCells) {
      throw new RangeError(`encodeTabular: column '${name}', line ${table.lines?.[firstText] ?? firstText + 2}: '${clip(rows[firstText]![c]!, 40)}' is not a number, but ${numericCells} of the column's ${numericCells + textCells} cells are (fix the cell, mark it missing, or declare the column categorical)`);
    }
    if (distinct.size <= 1) { dropped.push({ name, reason: 'constant' }); return; }
    const start = columns.length;
    if (numeric) {
      if (missingCells > 0 && options.missing === 'error') {
        const at = rows.findIndex((r) => markers.has(r[c]!));
        throw new RangeError(`encodeTabular: missing value in numeric column '${name}' on data row ${at + 1} (use missing: 'impute' to fill with the train mean)`);
      }
      let sum = 0, count = 0;
      for (const i of trainRows) { const v = rows[i]![c]!; if (!markers.has(v)) { sum += Number(v); count++; } }
      const mean = count > 0 ? sum / count : 0;
      let sq = 0;
      for (const i of trainRows) { const v = rows[i]![c]!; if (!markers.has(v)) sq += (Number(v) - mean) ** 2; }
      const sd = count > 0 ? Math.sqrt(sq / count) : 0;
      const std = sd > 0 ? sd : 1;
      groups.push({ name, kind: 'numeric', start, end: start + 1, mean, std });
      columns.push(name);
      writers.push((cell, out, o) => { out[o + start] = markers.has(cell) ? 0 : (Number(cell) - mean) / std; });
      if (missingCells > 0) missing.push({ name, cells: missingCells, handling: 'imputed' });
    } else {
      const levels = [...distinct].sort();
      if (missingCells > 0) { levels.push(MISSING_LEVEL); missing.push({ name, cells: missingCells, handling: 'level' }); }
      const index = new Map(levels.map((l, k) => [l, k]));
      groups.push({ name, kind: 'categorical', start, end: start + levels.length, levels });
      for (const l of levels) columns.push(`${name}=${l}`);
      writers.push((cell, out, o) => { out[o + start + index.get(markers.has(cell) ? MISSING_LEVEL : cell)!] = 1; });
    }
    sourceIndex.push(c);
  });
  if (groups.length === 0) throw new RangeError('encodeTabular: no feature columns left after dropping label, dropped and constant columns');

  const width = columns.length;
  // Checked before allocating: a hostile file can one-hot a column with a level per row.
  if (rows.length * width * 8 > 2 ** 30) {
    throw new RangeError(`encodeTabular: the encoded data would be ${rows.length} rows x ${width} columns of float64 (${rows.length * width * 8} bytes), over 1 GiB: does a categorical column have a level per row?`);
  }
  const encode = (which: number[]): TabularSplit => {
    const x = new Float64Array(which.length * width);
    const y = new Uint8Array(which.length);
    which.forEach((ri, k) => {
      const row = rows[ri]!;
      for (let g = 0; g < writers.length; g++) writers[g]!(row[sourceIndex[g]!]!, x, k * width);
      y[k] = row[labelIndex] === positive ? 1 : 0;
    });
    return { x, y, rows: which.length };
  };
  return { columns, groups, classes, train: encode(trainRows), test: encode(testRows), dropped, missing };
}

/** Picks the delimiter of a CSV header line: ';' or tab when the line has those and no comma. */
export function sniffDelimiter(text: string): string {
  const nl = text.indexOf('\n');
  const first = nl < 0 ? text : text.slice(0, nl);
  if (first.includes(',')) return ',';
  if (first.includes(';')) return ';';
  if (first.includes('\t')) return '\t';
  return ',';
}

/**
 * Parses and encodes CSV text in one step (delimiter sniffed from the header line).
 * @example const ds = loadTabular(csvText, { label: 'y' });
 */
export function loadTabular(text: string, options: TabularOptions): TabularDataset {
  return encodeTabular(parseCsv(text, sniffDelimiter(text)), options);
}

/** V8's longest string (2^29 - 24 UTF-16 units): a CSV file longer than this cannot be decoded at all. */
export const MAX_TEXT = 2 ** 29 - 24;

/**
 * Decodes CSV bytes (strict UTF-8, a BOM skipped) and encodes them (see `encodeTabular` for the
 * rules). Every problem with the data is a DataFormatError naming `name`; the size is checked
 * against `maxBytes` (default 1 GiB, at most V8's longest string) before decoding.
 * @example const ds = parseTabularFile(new TextEncoder().encode('a,y\n1,no\n2,yes\n3,no\n'), 'tiny.csv', { label: 'y' });
 */
export function parseTabularFile(bytes: Uint8Array, name: string, options: TabularOptions & DataLimits): TabularDataset {
  const cap = Math.min(maxBytesOf(options), MAX_TEXT);
  if (bytes.length > cap) throw new DataFormatError(name, `${formatBytes(bytes.length)} of CSV, over the limit of ${formatBytes(cap)}`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new DataFormatError(name, 'not UTF-8 text (re-save the CSV as UTF-8)');
  }
  try {
    return loadTabular(text, options);
  } catch (e) {
    // The parser's and encoder's own errors are about this file's contents; anything else is a bug.
    if (e instanceof Error && /^(parseCsv|encodeTabular): /.test(e.message)) throw new DataFormatError(name, e.message);
    throw e;
  }
}
