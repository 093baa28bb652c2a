/**
 * The IMAP connector: new mail in the watched mailbox → parse → ScoringService.score() → move to the
 * spam mailbox or flag it. Waits with IDLE (polling as a safety net, and alone on servers without IDLE),
 * reconnects with exponential backoff, learns from the user moving mail in or out of the spam mailbox, and
 * applies corrections made in the UI on the server (applyCorrection).
 *
 * Never losing or duplicating work rests on these rules (each upheld where named):
 *  - the per-mailbox cursor (UIDVALIDITY + highest UID done) is saved only after a message's action, so a
 *    crash re-processes it: score() returns the stored verdict for the same externalId, the action repeats
 *    (mailbox-walk.ts, new-mail.ts);
 *  - before any move of ours (verdict or UI correction) the message's record says so (`pendingMove` towards
 *    the spam mailbox, `pendingRestore` towards the watched one), so the copy that turns up there after a
 *    crash between MOVE and the next write is known to be ours, not a user's correction (our-moves.ts);
 *  - a move counts as the user's only when the message is gone from where we last saw it (UID check), so a
 *    second delivery of the same message is never mistaken for a correction (user-moves.ts);
 *  - a message the user said is not spam is never moved to the spam mailbox again (new-mail.ts);
 *  - after a UIDVALIDITY change the mailbox is walked again: known messages only get their new UID,
 *    unknown ones are new mail when they arrived after the newest one seen before (INTERNALDATE) (rescan.ts).
 *
 * Events: 'connected' (logged in and watching: mail delivered from now on is new mail), 'disconnected'
 * (after a 'connected'), 'idle' (caught up, waiting for mail), 'scored' (ScoredEvent),
 * 'corrected' (CorrectedEvent: the user's move, reported to the daemon), 'applied' (AppliedEvent: a
 * correction from the daemon carried out on the server).
 *
 * State keys (the ConnectorState is the account's own; state.ts): `cursor:<mailbox>`, `cursor:sent:<mailbox>`,
 * `corrections` (corrections from the daemon not yet carried out) and `msg:<key>`, records mapping a message to
 * the daemon's stored id. The key is a hash of Message-ID + Date header + RFC822.SIZE, or of the first 16 KiB +
 * size when there is no Message-ID: all survive IMAP MOVE/COPY and a server's renumbering, which keep the bytes.
 *
 * This class keeps the lifecycle and the loop (connect, session, wait, reconnect); the work is done by:
 * mailbox-walk.ts (cursor → messages), new-mail.ts (score and act), user-moves.ts (learning from the spam
 * mailbox), rescan.ts (UIDVALIDITY changes), corrections.ts + apply-correction.ts (the daemon's corrections),
 * correspondents.ts (the Sent mailbox's recipients), attempts.ts (retry or give up), state.ts (what is kept).
 */
import { EventEmitter } from 'node:events';
import type { ImapFlow } from 'imapflow';
import type { Logger } from 'pino';
import type { Connector, ConnectorState, CorrectionEvent, ScoringService } from '../../daemon/contract.ts';
import { accountName, checkAccount, connect, describeError, watchedMailbox, type ConnectOptions, type ImapAccount } from './account.ts';
import { CorrectionApplier } from './apply-correction.ts';
import { Attempts } from './attempts.ts';
import { CorrectionQueue } from './corrections.ts';
import { SentCorrespondents } from './correspondents.ts';
import type { Report } from './events.ts';
import { MailboxWalk } from './mailbox-walk.ts';
import { resolveSpamMailbox } from './mailboxes.ts';
import { NewMail } from './new-mail.ts';
import { asMeta, KEY_BYTES } from './records.ts';
import { Rescan } from './rescan.ts';
import type { HandleMessage, Session } from './session.ts';
import { Signal } from './signal.ts';
import { ImapState } from './state.ts';
import { UserMoves } from './user-moves.ts';

export type { AppliedEvent, CorrectedEvent, MessageAction, ScoredEvent } from './events.ts';

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

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class ImapConnector extends EventEmitter implements Connector {
  readonly source = 'imap' as const;
  /** IncomingMessage.account of everything this connector produces. */
  readonly account: string;
  private readonly config: ImapAccount;
  private readonly log: Logger;
  private readonly opts: { pollSeconds: number; backlog: number; learn: boolean; learnCorrespondents: boolean; initialMs: number; maxMs: number };
  private readonly connectOptions: ConnectOptions | undefined;
  private readonly inbox: string;
  private client: ImapFlow | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly wake = new Signal();

  private readonly state: ImapState;
  private readonly attempts: Attempts;
  private readonly walk: MailboxWalk;
  private readonly correspondents: SentCorrespondents;
  private readonly corrections: CorrectionQueue;
  private readonly applier: CorrectionApplier;

  constructor(o: ImapConnectorOptions) {
    super();
    this.config = o.account;
    this.account = accountName(o.account);
    this.inbox = watchedMailbox(o.account);
    const log = (this.log = o.logger.child({ connector: 'imap', account: this.account }));
    this.opts = {
      pollSeconds: o.pollSeconds ?? 120,
      backlog: o.backlog ?? 0,
      learn: o.learn ?? true,
      learnCorrespondents: o.learnCorrespondents ?? true,
      initialMs: o.reconnect?.initialMs ?? 1000,
      maxMs: o.reconnect?.maxMs ?? 5 * 60_000,
    };
    this.connectOptions = o.connectOptions;

    const { scoring } = o;
    const action = o.account.action;
    const account = this.account;
    const state = (this.state = new ImapState(o.state));
    const report: Report = (event, payload) => { this.emit(event, payload); };
    // The record key of a message without Message-ID hashes its first 16 KiB: never fetch less.
    const maxBytes = Math.max(o.maxBytes ?? 256 * 1024, KEY_BYTES);
    this.attempts = new Attempts(o.maxAttempts ?? 5, log, () => !this.client?.usable || this.stopped);
    const userMoves = new UserMoves({ scoring, state, log, action, report });
    const newMail = new NewMail({ account, scoring, state, log, action, maxBodyChars: o.maxBodyChars ?? 20_000, userMoves, report });
    const handle: HandleMessage = (s, mailbox, kind, msg, uidValidity) =>
      (kind === 'watched' ? newMail.handle(s, msg, uidValidity) : userMoves.inSpam(s, mailbox, msg, uidValidity));
    this.walk = new MailboxWalk({
      state, log, backlog: this.opts.backlog, maxBytes, batchSize: o.batchSize ?? 20, attempts: this.attempts,
      rescan: new Rescan({ state, log, maxBytes, handle }), handle, stopped: () => this.stopped,
    });
    this.correspondents = new SentCorrespondents({ account, sentMailbox: o.account.sentMailbox, scoring, state, log });
    this.corrections = new CorrectionQueue({ state, log, account });
    this.applier = new CorrectionApplier({ state, log, action, report });
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
    this.corrections.releaseWaiters();
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
    await this.corrections.add({ messageId: event.messageId, label: event.label, meta });
    if (!this.running || this.stopped) {
      this.log.info({ messageId: event.messageId, label: event.label }, 'correction saved; applied on the server when the connector runs');
      return;
    }
    const done = this.corrections.done(event.messageId);
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
    await this.corrections.load();
    const spam = this.config.action === 'move' || this.opts.learn ? await resolveSpamMailbox(client, this.config) : undefined;
    if (spam === this.inbox) throw new Error(`the spam mailbox and the watched mailbox are both ${this.inbox}`);
    const s: Session = { client, inbox: this.inbox, spam };
    const learnSpam = this.opts.learn && spam !== undefined;
    // 'connected' means watching: a first run's starting point is taken before it, so mail delivered after
    // the event is new mail, never mistaken for what was already there.
    await this.walk.cursor(client, this.inbox, 'watched');
    if (learnSpam) await this.walk.cursor(client, spam, 'spam');
    // Before any new mail is scored: a reply from someone the user wrote to must be recognised.
    await this.syncCorrespondents(client);
    onReady();
    while (!this.stopped && client.usable) {
      this.wake.clear();
      await this.syncCorrespondents(client);
      await this.walk.process(s, this.inbox, 'watched');
      await this.corrections.drain((p) => this.applier.apply(s, p), this.attempts, () => !this.stopped && client.usable);
      if (learnSpam) await this.walk.process(s, spam, 'spam');
      onHealthy();
      if (this.stopped || !client.usable) break;
      await this.waitForMail(client);
    }
  }

  private async syncCorrespondents(client: ImapFlow): Promise<void> {
    if (this.opts.learnCorrespondents) await this.correspondents.sync(client);
  }

  /** IDLE on the watched mailbox until the server reports a change, the poll interval passes, or stop(). */
  private async waitForMail(client: ImapFlow): Promise<void> {
    const lock = await client.getMailboxLock(this.inbox); // selects it again only when another one was selected
    const box = client.mailbox;
    lock.release();
    // Mail that came while another mailbox was selected raised no 'exists' event here.
    const cursor = this.state.knownCursor(this.inbox);
    if (box && cursor && Number(box.uidValidity) === cursor.uidValidity && box.uidNext - 1 > cursor.lastUid) return;
    // Without IDLE imapflow falls back to a NOOP every few minutes; the poll interval below still applies.
    const idle = client.idle({ whenFree: true }).catch((err: unknown) => {
      if (!this.stopped) this.log.debug({ error: describeError(err) }, 'IDLE ended with an error');
    });
    const wait = this.attempts.retrySoon ? Math.min(5000, this.opts.pollSeconds * 1000) : this.opts.pollSeconds * 1000;
    this.attempts.retrySoon = false;
    this.emit('idle');
    await this.wake.wait(wait);
    // The next command breaks IDLE; when the connection is gone it has already ended.
    if (!client.usable) await idle;
  }
}
