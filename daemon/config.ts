/**
 * The daemon's configuration: an embedded default, overlaid by `<home>/config.json` (optional), overlaid by
 * environment variables. Validated as a whole; an error names the file and the bad key.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import cron from 'node-cron';
import { z } from 'zod';
import { BACKEND_NAMES, INFERENCE_NAMES } from '../model/backend.ts';
import { TRAINABLE_LAYERS } from '../model/classifier.ts';
import { SCRATCH_SIZE_NAMES } from '../model/config.ts';

const probability = z.number().min(0).max(1);
/** A spam threshold (probability), or spam and ham thresholds; between them a message is uncertain. */
const fixedThreshold = z.union([
  probability.transform((spam) => ({ spam, ham: spam })),
  z
    .object({ spam: probability, ham: probability.optional() })
    .strict()
    .transform((t) => ({ spam: t.spam, ham: t.ham ?? t.spam }))
    .refine((t) => t.ham <= t.spam, { message: 'ham must not be above spam' }),
]);

/** An IMAP account (connectors/imap); the connector takes it as it is validated here. */
const imapAccount = z
  .object({
    /** The account's name in the store and the UI (IncomingMessage.account); default `${user}@${host}`. */
    name: z.string().min(1).optional(),
    host: z.string().min(1),
    /** Default 993 for 'tls', 143 otherwise. */
    port: z.number().int().min(1).max(65535).optional(),
    /** 'tls': TLS from the start; 'starttls': upgrade is required; 'none': cleartext (local test servers only). */
    secure: z.enum(['tls', 'starttls', 'none']).default('tls'),
    user: z.string().min(1),
    /** Exactly one of password, passwordEnv (the name of an environment variable holding it), accessToken (XOAUTH2). */
    password: z.string().optional(),
    passwordEnv: z.string().min(1).optional(),
    accessToken: z.string().optional(),
    /** The mailbox watched for new mail. Default 'INBOX'. */
    mailbox: z.string().min(1).optional(),
    /** Where spam goes; default: the \\Junk special-use mailbox, else 'Junk' (created when missing). */
    spamMailbox: z.string().min(1).optional(),
    /** Where the user's sent mail is (its recipients are known correspondents); default: the \\Sent special-use mailbox. */
    sentMailbox: z.string().min(1).optional(),
    /** What to do with spam: move it to the spam mailbox, flag it ($Junk), or only score it. */
    action: z.enum(['move', 'flag', 'none']).default('move'),
    /** Extra TLS options, e.g. { rejectUnauthorized: false } for a self-signed test server. */
    tls: z.object({ rejectUnauthorized: z.boolean().optional(), servername: z.string().optional() }).strict().optional(),
  })
  .strict()
  .refine((a) => [a.password, a.passwordEnv, a.accessToken].filter((v) => v !== undefined).length === 1, {
    message: 'set exactly one of password, passwordEnv, accessToken',
  });

export const configSchema = z
  .object({
    server: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8025),
        /**
         * Host names the daemon answers to besides IP addresses, localhost and the listen address (a guard against
         * DNS rebinding); ".example.org" also admits its subdomains. Add the name you reach it by, e.g. behind a proxy.
         */
        allowedHosts: z.array(z.string().min(1)).default([]),
      })
      .strict()
      .prefault({}),
    /** Tensor backend: auto picks tfjs-node-gpu, then tfjs-node, then wasm. */
    backend: z.enum(BACKEND_NAMES).default('auto'),
    /** What scores and fills the trunk cache: auto picks native ONNX Runtime when installed and working, else tfjs. */
    inference: z.enum(INFERENCE_NAMES).default('auto'),
    /** Native scoring with int8 weights in the frozen trunk: faster, not exact (README); the trunk cache stays float32. */
    inferenceInt8Trunk: z.boolean().default(false),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    model: z
      .object({
        /** 'auto': the installed GPT-2 (`gptspam model fetch`), else a from-scratch model; or a safetensors path; or 'scratch'. */
        base: z.string().min(1).default('auto'),
        scratchSize: z.enum(SCRATCH_SIZE_NAMES).default('tiny'),
        layers: z.enum(TRAINABLE_LAYERS).default('last_block'),
        maxTokens: z.number().int().min(8).max(1024).default(128),
        epochs: z.number().int().min(1).max(100).default(3),
        batchSize: z.number().int().min(1).max(256).default(8),
        learningRate: z.number().positive().default(5e-5),
        /** From-scratch models learn everything from nothing and need a larger step. */
        scratchLearningRate: z.number().positive().default(5e-4),
        /**
         * The weights kept are a moving average over the training steps with this decay (0: the last step's). It
         * smooths out the last steps' noise, which otherwise moves the calibrated spam threshold from run to run.
         */
        averageDecay: z.number().min(0).lt(1).default(0.999),
      })
      .strict()
      .prefault({}),
    verdicts: z
      .object({
        /**
         * Every training run sets each kind's spam threshold from held-out messages: the lowest score at which the
         * held-out ham loss (share of real mail flagged as spam) is at most this, judged by an upper confidence bound.
         */
        targetHamLoss: z.number().gt(0).lt(0.5).default(0.005),
        /** Confidence of that bound. */
        confidence: z.number().min(0.5).lt(1).default(0.95),
        /** Below the spam threshold, an uncertain band sized to hold about this share of held-out ham. */
        reviewHamShare: z.number().min(0).max(0.5).default(0.02),
        /** Thresholds fixed by the user per kind of message: they win over calibrated ones. */
        thresholds: z.object({ email: fixedThreshold, sms: fixedThreshold, other: fixedThreshold }).partial().strict().prefault({}),
        /** Messages from addresses the user has written to (and phone contacts) are ham, whatever the score. */
        knownCorrespondents: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    training: z
      .object({
        /** node-cron expression for the periodic re-fine-tuning; '' disables it. */
        schedule: z.string().default('0 3 * * *'),
        /** Start a run once this many corrections arrived since the last run; 0 disables it. */
        afterCorrections: z.number().int().min(0).default(50),
        /** Built-in corpora in the training set. */
        smsCollection: z.boolean().default(true),
        /**
         * The SMS Spam Collection file (label<TAB>text) to use as it is; default <home>/data/sms/SMSSpamCollection,
         * downloaded (and checked) when missing.
         */
        smsCollectionFile: z.string().min(1).optional(),
        /** Where the SMS Spam Collection zip is downloaded from (a mirror); default the UCI repository. */
        smsCollectionUrl: z.url().optional(),
        spamAssassin: z.boolean().default(true),
        /** At most this many training examples from each built-in corpus (balanced ham/spam); corrections always all. */
        maxPerCorpus: z.number().int().min(10).default(1500),
        /**
         * At most this many held-out examples of each built-in corpus, never trained on: what each run is judged and
         * its thresholds are calibrated on (the more ham, the lower a threshold can be shown to be safe).
         */
        maxHeldOutPerCorpus: z.number().int().min(10).default(3000),
        /** A candidate is promoted when its held-out accuracy is at least the current one's minus this. */
        promoteTolerance: z.number().min(0).max(1).default(0),
        /**
         * Runs with new labels continue from the current model for `epochs` epochs over those labels plus `replay`
         * times as many replayed examples (seconds, not minutes); epochs 0 always trains from the base over
         * everything. Runs without new labels, and after a change of base model or layers, train from the base.
         */
        refine: z
          .object({ epochs: z.number().int().min(0).max(20).default(2), replay: z.number().min(0).max(100).default(4) })
          .strict()
          .prefault({}),
        /** Share of examples (chosen by content hash, so stable across runs) held out for validation. */
        heldOutFraction: z.number().min(0.05).max(0.5).default(0.2),
      })
      .strict()
      .prefault({}),
    imap: z
      .object({
        accounts: z.array(imapAccount).default([]),
        pollSeconds: z.number().int().min(5).default(120),
        /** On an account's first run, also score the newest N messages already there. */
        backlog: z.number().int().min(0).default(0),
      })
      .strict()
      .prefault({}),
    sms: z
      .object({
        /** Export files dropped here are imported; default <home>/inbox/sms. '' disables watching. */
        watchFolder: z.string().optional(),
        includeSent: z.boolean().default(false),
        settleSeconds: z.number().min(0).default(5),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type DaemonConfig = z.infer<typeof configSchema>;
export type FixedThreshold = z.infer<typeof fixedThreshold>;
/** An IMAP account as connectors get it (through daemon/contract.ts). */
export type ImapAccountConfig = z.infer<typeof imapAccount>;

/** Environment variables that override config keys (after the file). */
export const ENV_OVERRIDES: Record<string, { path: string[]; type: 'string' | 'number' }> = {
  GPTSPAM_HOST: { path: ['server', 'host'], type: 'string' },
  GPTSPAM_PORT: { path: ['server', 'port'], type: 'number' },
  GPTSPAM_BACKEND: { path: ['backend'], type: 'string' },
  GPTSPAM_INFERENCE: { path: ['inference'], type: 'string' },
  GPTSPAM_LOG_LEVEL: { path: ['logLevel'], type: 'string' },
  GPTSPAM_BASE_MODEL: { path: ['model', 'base'], type: 'string' },
  GPTSPAM_TRAIN_SCHEDULE: { path: ['training', 'schedule'], type: 'string' },
};

export class ConfigError extends Error {}

/** Keys of earlier versions, with where they went. */
const MOVED: Record<string, string> = {
  thresholds: 'moved: spam thresholds are calibrated per kind of message now; to fix one, set verdicts.thresholds.email / .sms / .other',
};

function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let node = obj;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

/** Validates a raw config object (file content with environment overrides applied). */
export function parseConfig(raw: unknown, where: string): DaemonConfig {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((i) => {
      const at = i.path.map(String);
      // Name the unknown key itself (a typo is the usual cause), not the object holding it.
      if (i.code === 'unrecognized_keys') return i.keys.map((k) => `${[...at, k].join('.')}: ${MOVED[[...at, k].join('.')] ?? 'unknown key'}`).join('; ');
      return `${at.length ? at.join('.') : '(top level)'}: ${i.message}`;
    });
    throw new ConfigError(`${where}: ${problems.join('; ')}`);
  }
  const config = result.data;
  if (config.training.schedule !== '' && !cron.validate(config.training.schedule)) {
    throw new ConfigError(`${where}: training.schedule: "${config.training.schedule}" is not a valid cron expression`);
  }
  return config;
}

export function configPath(home: string): string {
  return join(home, 'config.json');
}

/** Reads `<home>/config.json` if it exists, applies environment overrides, validates. */
export async function loadConfig(home: string, env: NodeJS.ProcessEnv = process.env): Promise<DaemonConfig> {
  const path = configPath(home);
  let raw: Record<string, unknown> = {};
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new ConfigError(`${path}: ${(err as Error).message}`);
  }
  if (text !== undefined) {
    try {
      raw = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`${path}: not valid JSON (${(err as Error).message})`);
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`${path}: must be a JSON object`);
  }
  const sources: string[] = [text !== undefined ? path : 'the built-in defaults'];
  for (const [name, { path: keyPath, type }] of Object.entries(ENV_OVERRIDES)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    const parsed = type === 'number' ? Number(value) : value;
    if (type === 'number' && !Number.isFinite(parsed)) throw new ConfigError(`${name}: "${value}" is not a number`);
    setPath(raw, keyPath, parsed);
    sources.push(name);
  }
  return parseConfig(raw, sources.join(' + '));
}

/** Where SMS exports are watched for, '' when disabled. */
export function smsWatchFolder(config: DaemonConfig, home: string): string {
  return config.sms.watchFolder ?? join(home, 'inbox', 'sms');
}
