/**
 * The chapter-6 data preparation for the UCI SMS Spam Collection: parse the raw `label<TAB>text` file, balance it by
 * undersampling ham, shuffle with a fixed seed and split 70/10/20 into train/validation/test CSVs (`Label,Text`,
 * ham=0 / spam=1). The CSV reader also serves any other labelled data set with small integer labels.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { parse } from 'csv-parse';
import { stringify } from 'csv-stringify';
import { unzipSync } from 'fflate';
import seedrandom from 'seedrandom';
import { downloadFile } from './download/http.ts';
import { labelId, shuffled, type LabelledText, type LabelName } from './examples.ts';
import { writeFileAtomic } from './files.ts';

/** A message of the raw collection: its text with the collection's label name. */
export type SmsMessage = LabelledText<LabelName>;

export const SMS_COLLECTION_URL = 'https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip';
export const SMS_COLLECTION_FILE = 'SMSSpamCollection';
/** SHA-256 of the original `SMSSpamCollection` file (5574 lines) inside the UCI zip: what a download must match. */
export const SMS_COLLECTION_SHA256 = 'edc1f2ca36319ca36c6f80fede2f6ae5f81335289352485f3924df077ec20266';

/**
 * Parse the raw collection: one message per line, label and text separated by the FIRST tab. Messages contain quote
 * characters, so this is deliberately not a CSV parser. CRLF line ends and one trailing newline are tolerated.
 */
export function parseSmsCollection(text: string, source = SMS_COLLECTION_FILE): SmsMessage[] {
  const body = text.replace(/^\uFEFF/, '').replace(/\r?\n$/, '');
  if (body === '') throw new Error(`${source}: no messages (empty file)`);
  const lines = body.split(/\r?\n/);
  return lines.map((line, i) => {
    const tab = line.indexOf('\t');
    if (tab < 0) throw new Error(`${source} line ${i + 1}: no tab between label and text: "${preview(line)}"`);
    const label = line.slice(0, tab);
    if (label !== 'ham' && label !== 'spam') {
      throw new Error(`${source} line ${i + 1}: unknown label "${preview(label)}" (expected "ham" or "spam")`);
    }
    return { label, text: line.slice(tab + 1) };
  });
}

function preview(s: string): string {
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

function rngFor(seed: number | string): () => number {
  return seedrandom(String(seed));
}

/**
 * The chapter's `create_balanced_dataset`: keep every message of the smallest class (spam in the SMS data) and a
 * seeded random sample of the same size from each larger class (ham). Classes come out in label order (ham, spam),
 * as the chapter's concatenation does; `shuffleSplit` shuffles afterwards.
 */
export function balanceByUndersampling<R extends { label: string | number }>(rows: readonly R[], seed: number | string): R[] {
  const byLabel = new Map<R['label'], R[]>();
  for (const row of rows) {
    const group = byLabel.get(row.label);
    if (group) group.push(row);
    else byLabel.set(row.label, [row]);
  }
  if (byLabel.size === 0) return [];
  const smallest = Math.min(...[...byLabel.values()].map((g) => g.length));
  const rng = rngFor(seed);
  const labels = [...byLabel.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return labels.flatMap((label) => {
    const group = byLabel.get(label)!;
    return group.length === smallest ? group : shuffled(group, rng).slice(0, smallest);
  });
}

export interface SplitFractions {
  train: number;
  validation: number;
}

export interface Split<R> {
  train: R[];
  validation: R[];
  test: R[];
}

/**
 * The chapter's `random_split`: shuffle with a fixed seed, then cut by index. Sizes are floored as in the chapter:
 * train_end = floor(n·train), validation_end = train_end + floor(n·validation); the rest is the test set.
 */
export function shuffleSplit<R>(rows: readonly R[], fractions: SplitFractions, seed: number | string): Split<R> {
  const { train, validation } = fractions;
  for (const [name, f] of [['train', train], ['validation', validation]] as const) {
    if (!Number.isFinite(f) || f < 0 || f > 1) throw new Error(`split fraction ${name} must be between 0 and 1, got ${f}`);
  }
  if (train + validation > 1 + 1e-9) throw new Error(`split fractions train (${train}) + validation (${validation}) exceed 1`);
  const all = shuffled(rows, rngFor(seed));
  const trainEnd = Math.floor(all.length * train);
  const validationEnd = trainEnd + Math.floor(all.length * validation);
  return { train: all.slice(0, trainEnd), validation: all.slice(trainEnd, validationEnd), test: all.slice(validationEnd) };
}

/** Label names to class ids (ham 0, spam 1). */
export function toLabeled(rows: readonly SmsMessage[]): LabelledText[] {
  return rows.map((r) => ({ label: labelId(r.label), text: r.text }));
}

/** Write `Label,Text` CSV (quoted where needed, so texts may hold commas, quotes and newlines), atomically. */
export async function writeLabeledCsv(path: string, rows: readonly LabelledText[]): Promise<void> {
  await writeFileAtomic(path, stringify([...rows], { header: true, columns: [{ key: 'label', header: 'Label' }, { key: 'text', header: 'Text' }] }));
}

/**
 * Read a labelled CSV: a header with `Label` and `Text` columns (any case, any order, other columns ignored) and
 * non-negative integer labels, so multi-class data works as well as ham/spam. Streams, so large files are fine.
 */
export async function readLabeledCsv(path: string): Promise<LabelledText[]> {
  const parser = parse({ bom: true, info: true, skip_empty_lines: true });
  const source = createReadStream(path);
  // pipe() does not forward a read error (e.g. a missing file); without this the loop below would wait forever.
  source.on('error', (err) => parser.destroy(err));
  source.pipe(parser);
  const rows: LabelledText[] = [];
  let labelCol = -1;
  let textCol = -1;
  let header: string[] | undefined;
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      if (header === undefined) {
        header = record.map((h) => h.trim());
        const lower = header.map((h) => h.toLowerCase());
        labelCol = lower.indexOf('label');
        textCol = lower.indexOf('text');
        for (const [name, col] of [['Label', labelCol], ['Text', textCol]] as const) {
          if (col < 0) throw new Error(`${path}: missing column "${name}" (header has: ${header.join(', ')})`);
        }
        continue;
      }
      const raw = (record[labelCol] ?? '').trim();
      const label = /^\d+$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isSafeInteger(label)) {
        throw new Error(`${path} row ${rows.length + 1} (line ${info.lines}): label "${preview(raw)}" is not a non-negative integer`);
      }
      rows.push({ label, text: record[textCol] ?? '' });
    }
  } catch (err) {
    parser.destroy();
    if (err instanceof Error && !err.message.startsWith(path)) throw new Error(`${path}: ${err.message}`, { cause: err });
    throw err;
  }
  if (header === undefined) throw new Error(`${path}: empty file, expected a header with Label and Text columns`);
  return rows;
}

export interface PreparedCounts {
  raw: { total: number; ham: number; spam: number };
  balanced: number;
  train: number;
  validation: number;
  test: number;
  files: { train: string; validation: string; test: string };
}

/** Raw collection → balanced → shuffled 70/10/20 → `train.csv`, `validation.csv`, `test.csv` in `outDir`. */
export async function prepareSmsDataset(opts: { rawPath: string; outDir: string; seed?: number }): Promise<PreparedCounts> {
  const seed = opts.seed ?? 123;
  let text: string;
  try {
    text = await readFile(opts.rawPath, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the SMS collection at ${opts.rawPath}: ${(err as Error).message}`);
  }
  const messages = parseSmsCollection(text, opts.rawPath);
  const balanced = balanceByUndersampling(messages, seed);
  const split = shuffleSplit(toLabeled(balanced), { train: 0.7, validation: 0.1 }, seed);
  await mkdir(opts.outDir, { recursive: true });
  const files = {
    train: join(opts.outDir, 'train.csv'),
    validation: join(opts.outDir, 'validation.csv'),
    test: join(opts.outDir, 'test.csv'),
  };
  await writeLabeledCsv(files.train, split.train);
  await writeLabeledCsv(files.validation, split.validation);
  await writeLabeledCsv(files.test, split.test);
  const spam = messages.filter((m) => m.label === 'spam').length;
  return {
    raw: { total: messages.length, ham: messages.length - spam, spam },
    balanced: balanced.length,
    train: split.train.length,
    validation: split.validation.length,
    test: split.test.length,
    files,
  };
}

export interface DownloadedCollection {
  path: string;
  messages: number;
  /** SHA-256 of the extracted collection file: equal to the expected one (the original file's, by default). */
  sha256: string;
  /** SHA-256 of the zip as received, for the record. */
  zipSha256: string;
}

/**
 * Download the UCI zip, extract `SMSSpamCollection` into `destDir`, check it against the original file's SHA-256
 * (UCI publishes no checksum, and the zip's own bytes may change while its content does not) and that it parses.
 * The zip is small (~200 KB), so it is unpacked in memory; it is deleted afterwards.
 */
export async function downloadSmsCollection(opts: {
  url?: string;
  destDir: string;
  /** What the extracted file must hash to; default {@link SMS_COLLECTION_SHA256}. */
  expectedSha256?: string;
  onProgress?: (received: number, total: number | undefined) => void;
  signal?: AbortSignal;
}): Promise<DownloadedCollection> {
  const url = opts.url ?? SMS_COLLECTION_URL;
  const expected = opts.expectedSha256 ?? SMS_COLLECTION_SHA256;
  await mkdir(opts.destDir, { recursive: true });
  const zipPath = join(opts.destDir, 'sms+spam+collection.zip');
  const got = await downloadFile({ url, dest: zipPath, onProgress: opts.onProgress, signal: opts.signal });
  try {
    const names: string[] = [];
    let entries: Record<string, Uint8Array>;
    try {
      entries = unzipSync(new Uint8Array(await readFile(zipPath)), {
        filter: (f) => {
          names.push(f.name);
          return basename(f.name) === SMS_COLLECTION_FILE;
        },
      });
    } catch (err) {
      throw new Error(`${url} is not a readable zip: ${(err as Error).message}`);
    }
    const data = Object.values(entries)[0];
    if (data === undefined) throw new Error(`${url}: the zip has no ${SMS_COLLECTION_FILE} (it holds: ${names.join(', ') || 'nothing'})`);
    const sha256 = createHash('sha256').update(data).digest('hex');
    if (sha256 !== expected) {
      throw new Error(`${SMS_COLLECTION_FILE} from ${url} is not the expected file (SHA-256 ${sha256}, expected ${expected}); to use it anyway, save it and pass --from FILE`);
    }
    const text = new TextDecoder('utf-8').decode(data);
    const messages = parseSmsCollection(text, `${SMS_COLLECTION_FILE} from ${url}`);
    const path = join(opts.destDir, SMS_COLLECTION_FILE);
    await writeFileAtomic(path, data);
    return { path, messages: messages.length, sha256, zipSha256: got.sha256 };
  } finally {
    await rm(zipPath, { force: true });
  }
}
