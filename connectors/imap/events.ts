/** What ImapConnector reports as events (see connector.ts), and how its collaborators report them. */
import type { Label, VerdictLabel } from '../../daemon/contract.ts';

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

/** The events that carry a payload, by name. */
export interface ImapEvents {
  scored: ScoredEvent;
  corrected: CorrectedEvent;
  applied: AppliedEvent;
}

/** Emits one of the connector's events (the connector hands its collaborators this, not itself). */
export type Report = <K extends keyof ImapEvents>(event: K, payload: ImapEvents[K]) => void;
