// The typed API between the renderer and the main process: every command with its
// arguments and result, every event with its payload. The renderer imports only types.

export interface AppError {
  code: string;
  message: string;
}
export type Result<T> = { ok: true; value: T } | { ok: false; error: AppError };

export interface AppInfo {
  version: string;
  protocol: number;
  platform: string;
}

/** queued -> sent -> delivered -> read for outgoing messages (or failed); received for incoming. */
export type MessageState = 'queued' | 'sent' | 'delivered' | 'read' | 'failed' | 'received';

export interface Message {
  /** Local order within the conversation; also the paging cursor. */
  n: number;
  id: string;
  peer: string;
  direction: 'in' | 'out';
  text: string;
  state: MessageState;
  /** Why it failed (outgoing) or why it cannot be trusted (incoming). */
  error: string | null;
  /** Incoming only: failed to decrypt or authenticate. Never show it as genuine. */
  flagged: boolean;
  sentAt: number;
  createdAt: number;
  readAt: number | null;
}

export interface SearchHit {
  message: Message;
  peerName: string;
  /** Matched text with each hit between U+0002 and U+0003; render the parts as text. */
  snippet: string;
}

/** Commands: name -> [argument, result]. Channel names are `domain:verb`. */
export interface Commands {
  'app:info': [null, AppInfo];
}
export type CommandName = keyof Commands;
export const COMMAND_NAMES = ['app:info'] as const satisfies readonly CommandName[];

/** What window.parley offers: one named function per command. */
export interface ParleyApi {
  appInfo(): Promise<Result<AppInfo>>;
}

declare global {
  interface Window {
    parley: ParleyApi;
  }
}
