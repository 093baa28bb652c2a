/** What the daemon asks the explanation process, and what it answers (IPC messages, JSON). */
import type { Explanation } from '../../model/explain.ts';

export interface ExplainRequest {
  id: number;
  /** The model version and its checkpoint folder. */
  version: number;
  modelDir: string;
  /** The model text of the message (daemon/message-text.ts). */
  text: string;
}

export type ExplainReply =
  | { type: 'done'; id: number; explanation: Explanation }
  | { type: 'error'; id: number; message: string };
