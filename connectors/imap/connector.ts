/**
 * The IMAP connector loop: new mail in the watched mailbox → parse → ScoringService.score() → move to the
 * spam mailbox or flag it. Waits with IDLE (polling as a safety net, and alone on servers without IDLE),
 * reconnects with exponential backoff, learns from the user moving mail in or out of the spam mailbox, and
 * applies corrections made in the UI on the server (applyCorrection).
 *
 * Never losing or duplicating work rests on these rules:
 *  - the per-mailbox cursor (UIDVALIDITY + highest UID done) is saved only after a message's action, so a
 *    crash re-processes it: score() returns the stored verdict for the same externalId, the action repeats;
 *  - before any move of ours (verdict or UI correction) the message's record says so (`pendingMove` towards
 *    the spam mailbox, `pendingRestore` towards the watched one), so the copy that turns up there after a
 *    crash between MOVE and the next write is known to be ours, not a user's correction;
 *  - a move counts as the user's only when the message is gone from where we last saw it (UID check), so a
 *    second delivery of the same message is never mistaken for a correction;
 *  - a message the user said is not spam is never moved to the spam mailbox again;
 *  - after a UIDVALIDITY change the mailbox is walked again: known messages only get their new UID,
 *    unknown ones are new mail when they arrived after the newest one seen before (INTERNALDATE).
 *
 * Events: 'connected' (logged in and watching: mail delivered from now on is new mail), 'disconnected'
 * (after a 'connected'), 'idle' (caught up, waiting for mail), 'scored' (ScoredEvent),
 * 'corrected' (CorrectedEvent: the user's move, reported to the daemon), 'applied' (AppliedEvent: a
 * correction from the daemon carried out on the server).
 *
 * State keys (the ConnectorState is the account's own): `cursor:<mailbox>`, `corrections` (corrections
 * from the daemon not yet carried out) and `msg:<key>`, records mapping a message to the daemon's stored
 * id. The key is a hash of Message-ID + Date header + RFC822.SIZE, or of the first 16 KiB + size when
 * there is no Message-ID: all survive IMAP MOVE/COPY and a server's renumbering, which keep the bytes.
 */
import { EventEmitter } from 'node:events';
import type { ImapFlow } from 'imapflow';
import type { Logger } from 'pino';
import type { Connector, ConnectorState, CorrectionEvent, IncomingMessage, Label, ScoringService, VerdictLabel } from '../../daemon/types.ts';
import { parseEmail } from '../../daemon/email.ts';
import { accountName, checkAccount, connect, describeError, watchedMailbox, type ConnectOptions, type ImapAccount } from './account.ts';
import { findByMessageId, resolveSpamMailbox, uidExists } from './mailboxes.ts';
import { fetchByUid, fetchNewMessages, mailboxPosition, type FetchedMessage } from './fetch.ts';
import { clearUncertain, markVerdict, moveMessage } from './actions.ts';
import { asCursor, asMeta, asPending, asRecord, asSentCursor, KEY_BYTES, keyOf, sameplace, type Cursor, type ImapMessageMeta, type MessageRecord, type PendingCorrection, type Place } from './records.ts';
import { findSentMailbox, readSentRecipients } from './sent.ts';
import { Signal } from './signal.ts';

export interface ImapConnectorOptions {
  account: ImapAccount;
  scoring: ScoringService;
  /** This account's own state (keys are not prefixed with the account). */
  state: ConnectorState;
  logger: Logger;
  /** Longest wait between checks even when IDLE reports nothing (safety net). Default 120. */
  pollSeconds?: number;
  /** On the very first run, also score the newest N messages already there. Default 0 (new mail only). */
  backlog?: number;
  /** Bytes of each message fetched for scoring (at least 16 KiB). Default 256 KiB. */
  maxBytes?: number;
  maxBodyChars?: number;
  /** Messages fetched per round trip. Default 20. */
  batchSize?: number;
  /** Watch the spam mailbox for the user's moves and report them as corrections. Default true. */
  learn?: boolean;
  /** Read the recipients of the Sent mailbox as known correspondents (first run: all; then what is new). Default true. */
  learnCorrespondents?: boolean;
  /** Reconnect delays: doubles from initialMs up to maxMs. Defaults 1 s and 5 min. */
  reconnect?: { initialMs?: number; maxMs?: number };
  /** A message (or correction) that failed this many times is skipped (left in place, logged). Default 5. */
  maxAttempts?: number;
  connectOptions?: ConnectOptions;
}

export type MessageAction = 'moved' | 'flagged' | 'kept';

export interface ScoredEvent {
  externalId: string;
  uid: number;
  messageId: number;
  label: VerdictLabel;
  action: MessageAction;
}
export interface CorrectedEvent {
  messageId: number | undefined;
  label: Label;
  /** Where the message now is. */
  mailbox: string;
  uid: number;
}
export interface AppliedEvent {
  messageId: number;
  label: VerdictLabel;
  /** 'not-found': in neither the watched nor the spam mailbox (deleted or filed elsewhere by the user). */
  action: MessageAction | 'not-found';
  /** Where the message is now, when known. */
  mailbox?: string;
}

type Outcome = 'done' | 'retry' | 'gave-up';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class ImapConnector extends EventEmitter implements Connector {
  readonly source = 'imap' as const;
  /** IncomingMessage.account of everything this connector produces. */
  readonly account: string;
  private readonly config: ImapAccount;
  private readonly scoring: ScoringService;
  private readonly state: ConnectorState;
  private readonly log: Logger;
  private readonly opts: Required<Pick<ImapConnectorOptions, 'pollSeconds' | 'backlog' | 'maxBytes' | 'maxBodyChars' | 'batchSize' | 'learn' | 'learnCorrespondents' | 'maxAttempts'>> & { initialMs: number; maxMs: number };
  private readonly connectOptions: ConnectOptions | undefined;
  private readonly inbox: string;
  private spam: string | undefined;
  /** The Sent mailbox (null: the server has none). */
  private sent: string | null | undefined;
  private client: ImapFlow | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly wake = new Signal();
  private readonly failures = new Map<string, number>();
  /** A message failed this round: look again soon rather than after the full poll interval. */
  private retrySoon = false;
  private inboxCursor: Cursor | undefined;
  /** Corrections from the daemon not yet carried out, by daemon message id (the latest one wins). */
  private readonly pending = new Map<number, PendingCorrection>();
  private pendingLoaded: Promise<void> | undefined;
  private pendingWrite: Promise<void> = Promise.resolve();
  private readonly waiters = new Map<number, { resolve: () => void; reject: (err: Error) => void }[]>();

  constructor(o: ImapConnectorOptions) {
    super();
    this.config = o.account;
    this.scoring = o.scoring;
    this.state = o.state;
    this.account = accountName(o.account);
    this.inbox = watchedMailbox(o.account);
    this.log = o.logger.child({ connector: 'imap', account: this.account });
    this.opts = {
      pollSeconds: o.pollSeconds ?? 120,
      backlog: o.backlog ?? 0,
      // The record key of a message without Message-ID hashes its first 16 KiB: never fetch less.
      maxBytes: Math.max(o.maxBytes ?? 256 * 1024, KEY_BYTES),
      maxBodyChars: o.maxBodyChars ?? 20_000,
      batchSize: o.batchSize ?? 20,
      learn: o.learn ?? true,
      learnCorrespondents: o.learnCorrespondents ?? true,
      maxAttempts: o.maxAttempts ?? 5,
      initialMs: o.reconnect?.initialMs ?? 1000,
      maxMs: o.reconnect?.maxMs ?? 5 * 60_000,
    };
    this.connectOptions = o.connectOptions;
  }

  /**
   * Starts the loop in the background and resolves at once; connection errors are logged and retried, never
   * thrown. Rejects only for a configuration that can never work (no usable secret).
   */
  async start(): Promise<void> {
    if (this.running) return;
    checkAccount(this.config);
    this.stopped = false;
    this.running = this.loop();
  }

  /**
   * Stops after the message in hand and logs out; resolves when the loop has ended. After graceMs the
   * connection is closed under it (harmless: every step is repeated safely on the next start).
   * Corrections not yet carried out stay saved for the next start.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopped = true;
    this.wake.notify();
    const running = this.running;
    if (!running) return;
    const finished = await Promise.race([running.then(() => true), sleep(graceMs).then(() => false)]);
    if (!finished) {
      this.client?.close();
      await running;
    }
    this.running = undefined;
    for (const [id, list] of this.waiters) {
      this.waiters.delete(id);
      for (const w of list) w.resolve();
    }
  }

  /**
   * Carries out a correction made in the UI (or CLI) on the server: spam → the spam mailbox, ham → back to
   * the watched mailbox ('move'); $Junk/$NotJunk ('flag'); nothing ('none'). The message is found where the
   * connector last saw it, else by Message-ID + size + date in the watched and the spam mailbox; one the
   * user filed elsewhere is left there. Saved first, so a stop or a lost connection only delays it; resolves
   * when done (or at once while the connector is stopped). Our own move is never reported back as the
   * user's correction.
   */
  async applyCorrection(event: CorrectionEvent): Promise<void> {
    if (event.source !== 'imap' || event.account !== this.account) return;
    // The user moved it in the mailbox already; acting on it again could only fight their next move.
    if (event.origin === 'imap-move') return;
    if (event.label === null || this.config.action === 'none') return;
    const meta = asMeta(event.meta);
    if (!meta) {
      this.log.warn({ messageId: event.messageId }, 'correction for a message without IMAP data: cannot find it on the server');
      return;
    }
    await this.loadPending();
    this.pending.set(event.messageId, { messageId: event.messageId, label: event.label, meta });
    await this.persistPending();
    if (!this.running || this.stopped) {
      this.log.info({ messageId: event.messageId, label: event.label }, 'correction saved; applied on the server when the connector runs');
      return;
    }
    const done = new Promise<void>((resolve, reject) => {
      const list = this.waiters.get(event.messageId) ?? [];
      list.push({ resolve, reject });
      this.waiters.set(event.messageId, list);
    });
    this.wake.notify();
    return done;
  }

  private async loop(): Promise<void> {
    let delay = this.opts.initialMs;
    while (!this.stopped) {
      let healthy = false;
      let announced = false;
      try {
        const client = await connect(this.config, this.log, this.connectOptions);
        this.client = client;
        client.on('error', (err: Error) => this.log.warn({ error: describeError(err) }, 'IMAP connection error'));
        client.on('close', () => this.wake.notify());
        client.on('exists', () => this.wake.notify());
        this.log.info({ host: this.config.host }, 'IMAP connected');
        await this.session(client, () => { announced = true; this.emit('connected'); }, () => { healthy = true; delay = this.opts.initialMs; });
        if (!this.stopped) this.log.warn('IMAP connection closed by the server');
      } catch (err) {
        if (!this.stopped) this.log.warn({ error: describeError(err) }, 'IMAP session failed');
      } finally {
        const client = this.client;
        this.client = undefined;
        if (client && !client.isClosed) {
          if (this.stopped && client.usable) await Promise.race([client.logout().catch(() => {}), sleep(2000)]);
          client.close();
        }
        if (announced) this.emit('disconnected');
      }
      if (this.stopped) break;
      const wait = Math.round(delay * (0.8 + Math.random() * 0.4));
      this.log.info({ retryInMs: wait }, 'IMAP reconnecting');
      this.wake.clear();
      await this.sleepUnlessStopped(wait);
      if (!healthy) delay = Math.min(delay * 2, this.opts.maxMs);
    }
  }

  private async sleepUnlessStopped(ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (!this.stopped && Date.now() < end) await this.wake.wait(end - Date.now());
  }

  private async session(client: ImapFlow, onReady: () => void, onHealthy: () => void): Promise<void> {
    await this.loadPending();
    this.spam = this.config.action === 'move' || this.opts.learn ? await resolveSpamMailbox(client, this.config) : undefined;
    if (this.spam === this.inbox) throw new Error(`the spam mailbox and the watched mailbox are both ${this.inbox}`);
    // 'connected' means watching: a first run's starting point is taken before it, so mail delivered after
    // the event is new mail, never mistaken for what was already there.
    await this.cursor(client, this.inbox, this.opts.backlog);
    if (this.opts.learn && this.spam) await this.cursor(client, this.spam, 0);
    // Before any new mail is scored: a reply from someone the user wrote to must be recognised.
    await this.syncSentRecipients(client);
    onReady();
    while (!this.stopped && client.usable) {
      this.wake.clear();
      await this.syncSentRecipients(client);
      await this.processMailbox(client, this.inbox, 'watched');
      await this.applyPendingCorrections(client);
      if (this.opts.learn && this.spam) await this.processMailbox(client, this.spam, 'spam');
      onHealthy();
      if (this.stopped || !client.usable) break;
      await this.waitForMail(client);
    }
  }

  /** IDLE on the watched mailbox until the server reports a change, the poll interval passes, or stop(). */
  private async waitForMail(client: ImapFlow): Promise<void> {
    const lock = await client.getMailboxLock(this.inbox); // selects it again only when another one was selected
    const box = client.mailbox;
    lock.release();
    // Mail that came while another mailbox was selected raised no 'exists' event here.
    if (box && this.inboxCursor && Number(box.uidValidity) === this.inboxCursor.uidValidity
      && box.uidNext - 1 > this.inboxCursor.lastUid) return;
    // Without IDLE imapflow falls back to a NOOP every few minutes; the poll interval below still applies.
    const idle = client.idle({ whenFree: true }).catch((err: unknown) => {
      if (!this.stopped) this.log.debug({ error: describeError(err) }, 'IDLE ended with an error');
    });
    const wait = this.retrySoon ? Math.min(5000, this.opts.pollSeconds * 1000) : this.opts.pollSeconds * 1000;
    this.retrySoon = false;
    this.emit('idle');
    await this.wake.wait(wait);
    // The next command breaks IDLE; when the connection is gone it has already ended.
    if (!client.usable) await idle;
  }

  // ---------------------------------------------------------------- known correspondents (the Sent mailbox)

  /** Hands the daemon the recipients of what the user sent since the last look (all of it the first time). */
  private async syncSentRecipients(client: ImapFlow): Promise<void> {
    if (!this.opts.learnCorrespondents) return;
    if (this.sent === undefined) {
      this.sent = (await findSentMailbox(client, this.config.sentMailbox)) ?? null;
      if (this.sent === null) {
        this.log.warn({ sentMailbox: this.config.sentMailbox ?? '\\Sent' }, 'no Sent mailbox found: known correspondents cannot be learned from this account');
      }
    }
    if (this.sent === null) return;
    const key = `cursor:sent:${this.sent}`;
    const saved = asSentCursor(await this.state.get(key));
    const { recipients, cursor } = await readSentRecipients(client, this.sent, saved);
    if (recipients.length) {
      const unique = new Map(recipients.map((r) => [r.address.toLowerCase(), r]));
      const added = await this.scoring.addCorrespondents(
        [...unique.values()].map((r) => ({ address: r.address, display: r.name ? `${r.name} <${r.address}>` : r.address, origin: 'imap-sent', account: this.account })),
      );
      this.log.info({ mailbox: this.sent, recipients: recipients.length, added }, 'read the Sent mailbox: known correspondents updated');
    }
    if (!saved || saved.uidValidity !== cursor.uidValidity || saved.lastUid !== cursor.lastUid) await this.state.set(key, cursor);
  }

  // ---------------------------------------------------------------- new messages in a mailbox

  /**
   * Works through the messages above the mailbox's cursor: the watched mailbox's are scored, the spam
   * mailbox's are checked for the user's moves. A UIDVALIDITY change starts a rescan from UID 1.
   */
  private async processMailbox(client: ImapFlow, mailbox: string, kind: 'watched' | 'spam'): Promise<void> {
    let cursor = await this.cursor(client, mailbox, kind === 'watched' ? this.opts.backlog : 0);
    if (kind === 'spam' && !cursor.rescan) {
      // STATUS is cheap and keeps the watched mailbox selected when nothing changed.
      const status = await client.status(mailbox, { uidNext: true, uidValidity: true });
      if (status && Number(status.uidValidity) === cursor.uidValidity && (status.uidNext ?? 0) <= cursor.lastUid + 1) return;
    }
    const bytes = kind === 'watched' ? this.opts.maxBytes : KEY_BYTES;
    const limit = kind === 'watched' ? this.opts.batchSize : this.opts.batchSize * 4;
    for (;;) {
      if (this.stopped) return;
      // A rescan reads envelopes only: most messages are known and need no bytes.
      const res = await fetchNewMessages(client, mailbox, cursor.lastUid, cursor.rescan ? { maxBytes: 0, limit: limit * 4 } : { maxBytes: bytes, limit });
      if (res.uidValidity !== cursor.uidValidity) {
        cursor = await this.startRescan(mailbox, cursor, res.uidValidity);
        continue;
      }
      for (const msg of res.messages) {
        if (this.stopped) return;
        const id = kind === 'watched' ? `${res.uidValidity}:${msg.uid}` : `${mailbox}:${res.uidValidity}:${msg.uid}`;
        const c = cursor;
        const outcome = await this.guarded(id, () => (c.rescan
          ? this.rescanOne(client, mailbox, kind, msg, res.uidValidity, c)
          : this.handle(client, mailbox, kind, msg, res.uidValidity)));
        if (outcome === 'retry') return; // will be retried on the next round
        // An APPEND can carry any date: one from the future must not make all later mail look old.
        const when = Math.min(msg.internalDate?.getTime() ?? 0, Date.now() + 5 * 60_000);
        cursor = cursor.rescan
          ? { ...cursor, lastUid: msg.uid, rescanSeenMs: Math.max(cursor.rescanSeenMs ?? 0, when) }
          : { ...cursor, lastUid: msg.uid, ...(cursor.seenMs !== undefined || when ? { seenMs: Math.max(cursor.seenMs ?? 0, when) } : {}) };
        await this.saveCursor(mailbox, cursor);
      }
      if (!res.more) {
        cursor = await this.skipVanished(mailbox, cursor, res.uidNext);
        if (cursor.rescan) cursor = await this.endRescan(mailbox, cursor);
        return;
      }
    }
  }

  private handle(client: ImapFlow, mailbox: string, kind: 'watched' | 'spam', msg: FetchedMessage, uidValidity: number): Promise<void> {
    return kind === 'watched' ? this.handleNew(client, msg, uidValidity) : this.handleInSpam(client, mailbox, msg, uidValidity);
  }

  /**
   * Runs one message's (or correction's) work. A failure is retried on later rounds; after maxAttempts it
   * is given up so one poisonous message cannot stall the mailbox. A lost connection is rethrown to the
   * reconnect loop.
   */
  private async guarded(what: string, work: () => Promise<void>): Promise<Outcome> {
    try {
      await work();
      this.failures.delete(what);
      return 'done';
    } catch (err) {
      if (!this.client?.usable || this.stopped) throw err;
      const n = (this.failures.get(what) ?? 0) + 1;
      this.failures.set(what, n);
      if (n >= this.opts.maxAttempts) {
        this.log.error({ item: what, attempts: n, error: describeError(err) }, 'giving up: left where it is');
        this.failures.delete(what);
        return 'gave-up';
      }
      this.log.warn({ item: what, attempt: n, error: describeError(err) }, 'processing failed; will retry');
      this.retrySoon = true;
      return 'retry';
    }
  }

  private async handleNew(client: ImapFlow, msg: FetchedMessage, uidValidity: number): Promise<void> {
    const externalId = `${uidValidity}:${msg.uid}`;
    const key = keyOf(msg);
    const rec = await this.record(key);
    const here = { mailbox: this.inbox, uidValidity, uid: msg.uid };

    // Settled by the user at this very place (a crash before the cursor moved), or our own move back from
    // the spam mailbox for a correction made in the UI arriving: neither new mail nor the user's move.
    if (rec && ((rec.by === 'user' && sameplace(rec, here)) || rec.pendingRestore)) {
      if (rec.pendingRestore || !sameplace(rec, here)) await this.saveRecord(key, { ...rec, ...here, pendingRestore: undefined });
      return;
    }

    const parsed = await parseEmail(msg.source, { maxBodyChars: this.opts.maxBodyChars });
    if (parsed.problems.length) this.log.info({ externalId, problems: parsed.problems }, 'message has problems; scoring what could be read');

    // Back from the spam mailbox: the user says it is not spam. Never move it back.
    if (rec && this.spam && rec.mailbox === this.spam && !(await this.stillThere(client, rec))) {
      let id = rec.id;
      if (id !== undefined && rec.label !== 'ham') await this.scoring.correct(id, 'ham', 'imap-move');
      if (id === undefined) {
        // Never scored (the server filed it as spam): store it with the user's label.
        id = (await this.scoring.score({ ...this.incoming(msg, parsed, externalId, key, uidValidity), knownLabel: 'ham' })).messageId;
      }
      await this.saveRecord(key, { id, label: 'ham', ...here, messageIdHeader: msg.messageId, by: 'user' });
      if (this.config.action === 'flag') await markVerdict(client, msg.uid, 'ham', this.inbox);
      this.log.info({ externalId, messageId: id }, 'user moved message out of the spam mailbox: corrected to ham');
      this.emit('corrected', { messageId: id, label: 'ham', mailbox: this.inbox, uid: msg.uid } satisfies CorrectedEvent);
      return;
    }

    const verdict = await this.scoring.score(this.incoming(msg, parsed, externalId, key, uidValidity));
    // The same message again (a re-delivery, or moved back in from elsewhere) after the user said it is
    // not spam: their word stands over the model's.
    const userSaidHam = rec?.by === 'user' && rec.label === 'ham';
    const label: VerdictLabel = userSaidHam ? 'ham' : verdict.label;
    const base: MessageRecord = { id: verdict.messageId, label, ...here, messageIdHeader: msg.messageId, by: userSaidHam ? 'user' : 'verdict' };
    let action: MessageAction = 'kept';
    if (label === 'spam' && this.config.action === 'move' && this.spam) {
      await this.saveRecord(key, { ...base, pendingMove: true });
      const moved = await moveMessage(client, msg.uid, this.inbox, this.spam);
      if (moved.gone) {
        // The user moved or deleted it first; should it turn up in the spam mailbox, that is their move.
        await this.saveRecord(key, base);
      } else {
        await this.saveRecord(key, await this.afterMove(client, { ...base, mailbox: this.spam }, moved.newUid, moved.newUidValidity, 'pendingMove'));
        action = 'moved';
      }
    } else if (this.config.action === 'flag' || (this.config.action === 'move' && label === 'uncertain')) {
      // Uncertain mail stays where it is, marked for review; 'flag' marks every verdict.
      await markVerdict(client, msg.uid, label, this.inbox);
      await this.saveRecord(key, base);
      action = 'flagged';
    } else {
      await this.saveRecord(key, base);
    }
    if (userSaidHam && verdict.label === 'spam') this.log.info({ externalId, messageId: verdict.messageId }, 'the user said this message is not spam before: left in place');
    this.log.info({ externalId, messageId: verdict.messageId, label: verdict.label, p: round(verdict.spamProbability), action, duplicate: verdict.duplicate, size: msg.size }, 'message scored');
    this.emit('scored', { externalId, uid: msg.uid, messageId: verdict.messageId, label: verdict.label, action } satisfies ScoredEvent);
  }

  /**
   * The record after one of our moves to rec.mailbox. Without the new UID (no UIDPLUS, or the message was
   * gone already) the pending flag stays: the copy found there later is then recognised as ours.
   */
  private async afterMove(client: ImapFlow, rec: MessageRecord, newUid: number | undefined, newValidity: number | undefined, flag: 'pendingMove' | 'pendingRestore'): Promise<MessageRecord> {
    const out: MessageRecord = { ...rec, pendingMove: undefined, pendingRestore: undefined };
    if (newUid === undefined) return { ...out, uid: undefined, uidValidity: undefined, [flag]: true };
    return { ...out, uid: newUid, uidValidity: newValidity ?? (await this.uidValidityOf(client, rec.mailbox)) };
  }

  private incoming(msg: FetchedMessage, parsed: Awaited<ReturnType<typeof parseEmail>>, externalId: string, key: string, uidValidity: number): IncomingMessage {
    const meta: ImapMessageMeta = {
      mailbox: this.inbox,
      uidValidity,
      uid: msg.uid,
      messageId: msg.messageId ?? parsed.messageId ?? null,
      date: (msg.date ?? parsed.date)?.toISOString() ?? null,
      size: msg.size,
      key,
      truncated: msg.truncated || parsed.truncated,
      attachments: parsed.attachments,
      ...(parsed.problems.length ? { problems: parsed.problems } : {}),
    };
    const m: IncomingMessage = { source: 'imap', account: this.account, externalId, body: parsed.body, meta: { ...meta } };
    if (parsed.sender) m.sender = parsed.sender;
    if (parsed.subject) m.subject = parsed.subject;
    const received = msg.date ?? parsed.date;
    if (received) m.receivedAt = received;
    return m;
  }

  // ---------------------------------------------------------------- the spam mailbox (learning)

  private async handleInSpam(client: ImapFlow, spam: string, msg: FetchedMessage, uidValidity: number): Promise<void> {
    const key = keyOf(msg);
    const rec = await this.record(key);
    const here = { mailbox: spam, uidValidity, uid: msg.uid };
    if (!rec) {
      // Not scored by us (filed by the server, or older): remember it so a move to the inbox is recognised.
      await this.saveRecord(key, { ...here, messageIdHeader: msg.messageId, by: 'server' });
      return;
    }
    if (rec.pendingMove || (rec.mailbox === spam && rec.by === 'verdict')) {
      await this.saveRecord(key, { ...rec, ...here, pendingMove: undefined }); // our own move arriving
      return;
    }
    if (rec.mailbox !== spam && (await this.stillThere(client, rec))) return; // a second copy; the original stays put
    if (rec.mailbox === spam) {
      await this.saveRecord(key, { ...rec, ...here });
      return;
    }
    // It left the mailbox we last saw it in and is now here: the user says spam.
    if (rec.id !== undefined && rec.label !== 'spam') await this.scoring.correct(rec.id, 'spam', 'imap-move');
    await this.saveRecord(key, { ...rec, ...here, label: 'spam', by: 'user', pendingRestore: undefined });
    this.log.info({ messageId: rec.id, uid: msg.uid }, 'user moved message to the spam mailbox: corrected to spam');
    this.emit('corrected', { messageId: rec.id, label: 'spam', mailbox: spam, uid: msg.uid } satisfies CorrectedEvent);
  }

  /** Whether the message is still where the record says; without a UID, by Message-ID search. */
  private async stillThere(client: ImapFlow, rec: MessageRecord): Promise<boolean> {
    if (rec.uid !== undefined && rec.uidValidity !== undefined) return uidExists(client, rec.mailbox, rec.uidValidity, rec.uid);
    if (!rec.messageIdHeader) return true; // cannot tell: assume it did not move (no correction)
    return (await findByMessageId(client, rec.mailbox, rec.messageIdHeader)).uids.length > 0;
  }

  // ---------------------------------------------------------------- UIDVALIDITY changes

  private async startRescan(mailbox: string, old: Cursor, uidValidity: number): Promise<Cursor> {
    const cursor: Cursor = { uidValidity, lastUid: 0, rescan: true };
    if (old.seenMs !== undefined) cursor.seenMs = old.seenMs;
    this.log.warn({ mailbox, oldUidValidity: old.uidValidity, uidValidity }, 'UIDVALIDITY changed (mailbox recreated or server migrated): matching its messages again by Message-ID, date and size');
    await this.saveCursor(mailbox, cursor);
    return cursor;
  }

  private async endRescan(mailbox: string, cursor: Cursor): Promise<Cursor> {
    const next: Cursor = { uidValidity: cursor.uidValidity, lastUid: cursor.lastUid };
    if (cursor.seenMs !== undefined || cursor.rescanSeenMs !== undefined) next.seenMs = Math.max(cursor.seenMs ?? 0, cursor.rescanSeenMs ?? 0);
    await this.saveCursor(mailbox, next);
    this.log.info({ mailbox }, 'rescan after the UIDVALIDITY change finished');
    return next;
  }

  /**
   * One message of a rescan (envelope only). Known here before: only its UID changed, it is not scored
   * again. Unknown and received before the newest message seen before the change: old mail, left alone.
   * Anything else (new mail, or a message that moved here meanwhile) is handled as usual.
   */
  private async rescanOne(client: ImapFlow, mailbox: string, kind: 'watched' | 'spam', msg: FetchedMessage, uidValidity: number, cursor: Cursor): Promise<void> {
    let keyed: FetchedMessage | undefined = msg;
    if (!msg.messageId) keyed = (await fetchByUid(client, mailbox, [msg.uid], KEY_BYTES)).messages[0]; // the key needs its first bytes
    if (!keyed) return; // expunged meanwhile
    const key = keyOf(keyed);
    const rec = await this.record(key);
    if (rec && rec.mailbox === mailbox) {
      const arrived = kind === 'spam' ? { pendingMove: undefined } : { pendingRestore: undefined };
      await this.saveRecord(key, { ...rec, uidValidity, uid: msg.uid, ...arrived });
      return;
    }
    const when = msg.internalDate?.getTime();
    if (!rec && (when === undefined || cursor.seenMs === undefined || when < cursor.seenMs)) return;
    const full = kind === 'watched' || !keyed.source.length ? (await fetchByUid(client, mailbox, [msg.uid], kind === 'watched' ? this.opts.maxBytes : KEY_BYTES)).messages[0] : keyed;
    if (full) await this.handle(client, mailbox, kind, full, uidValidity);
  }

  // ---------------------------------------------------------------- corrections from the daemon

  private loadPending(): Promise<void> {
    this.pendingLoaded ??= (async () => {
      const saved = await this.state.get('corrections');
      if (!Array.isArray(saved)) return;
      for (const v of saved) {
        const p = asPending(v);
        if (p && !this.pending.has(p.messageId)) this.pending.set(p.messageId, p);
      }
      if (this.pending.size) this.log.info({ corrections: this.pending.size }, 'corrections from before the restart still to apply');
    })().catch((err: unknown) => {
      this.pendingLoaded = undefined; // try again next time
      throw err;
    });
    return this.pendingLoaded;
  }

  /** Writes the pending list; writes are chained so the last one written is the latest list. */
  private persistPending(): Promise<void> {
    const write = this.pendingWrite.then(() => this.state.set('corrections', [...this.pending.values()]));
    this.pendingWrite = write.catch(() => {});
    return write;
  }

  private async applyPendingCorrections(client: ImapFlow): Promise<void> {
    for (const p of [...this.pending.values()]) {
      if (this.stopped || !client.usable) return;
      let failure: Error | undefined;
      const outcome = await this.guarded(`correction:${p.messageId}`, async () => {
        try {
          await this.applyOne(client, p);
        } catch (err) {
          failure = err instanceof Error ? err : new Error(String(err));
          throw err;
        }
      });
      if (outcome === 'retry') continue;
      // A newer correction of the same message came in meanwhile: that one is still to do.
      if (this.pending.get(p.messageId) !== p) continue;
      this.pending.delete(p.messageId);
      await this.persistPending();
      const list = this.waiters.get(p.messageId) ?? [];
      this.waiters.delete(p.messageId);
      for (const w of list) {
        if (outcome === 'done') w.resolve();
        else w.reject(new Error(`IMAP ${this.account}: giving up on the correction of message ${p.messageId}: ${describeError(failure)}`));
      }
    }
  }

  private async applyOne(client: ImapFlow, p: PendingCorrection): Promise<void> {
    const { meta, label, messageId } = p;
    const key = meta.key;
    const rec = await this.record(key);
    const at = await this.locate(client, rec, meta);
    if (!at) {
      this.log.info({ messageId, label }, 'corrected message is in neither the watched nor the spam mailbox: left where it is');
      this.emit('applied', { messageId, label, action: 'not-found' } satisfies AppliedEvent);
      return;
    }
    const base: MessageRecord = { id: messageId, label, ...at, by: 'user' };
    const mid = rec?.messageIdHeader ?? meta.messageId ?? undefined;
    if (mid) base.messageIdHeader = mid;
    let action: AppliedEvent['action'] = 'kept';
    let now: string | undefined = at.mailbox;
    // A settled uncertain message loses its review keyword ('flag' swaps keywords anyway).
    if (this.config.action === 'move' && rec?.label === 'uncertain') await clearUncertain(client, at.uid, at.mailbox);
    if (this.config.action === 'flag') {
      await markVerdict(client, at.uid, label, at.mailbox);
      await this.saveRecord(key, base);
      action = 'flagged';
    } else if (this.spam && label === 'spam' && at.mailbox === this.inbox) {
      await this.saveRecord(key, { ...base, pendingMove: true });
      const moved = await moveMessage(client, at.uid, this.inbox, this.spam);
      [action, now] = moved.gone ? ['not-found', undefined] : ['moved', this.spam];
      await this.saveRecord(key, moved.gone ? base : await this.afterMove(client, { ...base, mailbox: this.spam }, moved.newUid, moved.newUidValidity, 'pendingMove'));
    } else if (this.spam && label !== 'spam' && at.mailbox === this.spam) {
      await this.saveRecord(key, { ...base, pendingRestore: true });
      const moved = await moveMessage(client, at.uid, this.spam, this.inbox);
      [action, now] = moved.gone ? ['not-found', undefined] : ['moved', this.inbox];
      await this.saveRecord(key, moved.gone ? base : await this.afterMove(client, { ...base, mailbox: this.inbox }, moved.newUid, moved.newUidValidity, 'pendingRestore'));
    } else {
      await this.saveRecord(key, base); // already where the label says
    }
    this.log.info({ messageId, label, action, mailbox: now }, 'correction applied on the server');
    this.emit('applied', { messageId, label, action, ...(now ? { mailbox: now } : {}) } satisfies AppliedEvent);
  }

  /**
   * Where the message is now, in the watched or the spam mailbox: where the record says, where it was
   * scored, else the first match by Message-ID + size + date (the record's mailbox searched first).
   */
  private async locate(client: ImapFlow, rec: MessageRecord | undefined, meta: ImapMessageMeta): Promise<Place | undefined> {
    const boxes = this.spam ? [this.inbox, this.spam] : [this.inbox];
    for (const p of [rec, meta]) {
      if (p && boxes.includes(p.mailbox) && p.uid !== undefined && p.uidValidity !== undefined
        && (await uidExists(client, p.mailbox, p.uidValidity, p.uid))) return { mailbox: p.mailbox, uidValidity: p.uidValidity, uid: p.uid };
    }
    const mid = rec?.messageIdHeader ?? meta.messageId;
    if (!mid) return undefined;
    const order = rec && boxes.includes(rec.mailbox) ? [rec.mailbox, ...boxes.filter((b) => b !== rec.mailbox)] : boxes;
    const date = meta.date ? new Date(meta.date) : undefined;
    for (const mailbox of order) {
      const found = await findByMessageId(client, mailbox, mid, { size: meta.size, ...(date && !Number.isNaN(date.getTime()) ? { date } : {}) });
      const uid = found.uids[0];
      if (uid !== undefined) return { mailbox, uidValidity: found.uidValidity, uid };
    }
    return undefined;
  }

  // ---------------------------------------------------------------- state

  private async cursor(client: ImapFlow, mailbox: string, backlog: number): Promise<Cursor> {
    const saved = asCursor(await this.state.get(`cursor:${mailbox}`));
    if (saved) {
      if (mailbox === this.inbox) this.inboxCursor = saved;
      return saved;
    }
    const pos = await mailboxPosition(client, mailbox, backlog);
    // Where "new" starts should UIDVALIDITY change: after the newest message left alone (INTERNALDATE has
    // whole seconds, on the server's clock); in a mailbox empty now everything to come is new.
    const seenMs = pos.highestInternalDate ? pos.highestInternalDate.getTime() + 1000 : 0;
    const cursor: Cursor = { uidValidity: pos.uidValidity, lastUid: pos.highestUid, seenMs };
    this.log.info({ mailbox, startAfterUid: cursor.lastUid, backlog }, 'first run on this mailbox: only newer mail is processed');
    await this.saveCursor(mailbox, cursor);
    return cursor;
  }

  /**
   * All of a mailbox's messages above the cursor were handled, yet UIDNEXT is further on: the messages in
   * between were expunged or moved away before we saw them. UIDs are never reused, so the cursor moves past
   * them (otherwise "UIDNEXT is ahead" would wake the loop again and again).
   */
  private async skipVanished(mailbox: string, cursor: Cursor, uidNext: number): Promise<Cursor> {
    if (uidNext - 1 <= cursor.lastUid) return cursor;
    const next = { ...cursor, lastUid: uidNext - 1 };
    await this.saveCursor(mailbox, next);
    return next;
  }

  private async saveCursor(mailbox: string, cursor: Cursor): Promise<void> {
    await this.state.set(`cursor:${mailbox}`, cursor);
    if (mailbox === this.inbox) this.inboxCursor = cursor;
  }

  private async record(key: string): Promise<MessageRecord | undefined> {
    return asRecord(await this.state.get(`msg:${key}`));
  }

  private async saveRecord(key: string, rec: MessageRecord): Promise<void> {
    // JSON-friendly: no undefined members.
    const clean = Object.fromEntries(Object.entries(rec).filter(([, v]) => v !== undefined));
    await this.state.set(`msg:${key}`, clean);
  }

  private async uidValidityOf(client: ImapFlow, mailbox: string): Promise<number | undefined> {
    const s = await client.status(mailbox, { uidValidity: true });
    return s && s.uidValidity !== undefined ? Number(s.uidValidity) : undefined;
  }
}

function round(p: number): number {
  return Math.round(p * 1000) / 1000;
}
