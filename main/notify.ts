// What the desktop notification for a new message says. The text is the sender's: on Linux
// the notification server reads the body as markup (<b>, <a href>, <img>: the freedesktop
// notification spec), so there it is escaped and shows exactly as typed. Bidi controls that
// would reorder it are dropped, and it is cut at 200 characters without splitting one.

/**
 * The app's id (package.json's build.appId). Windows shows an app's notifications only when
 * the process's AppUserModelID is the one on the Start-menu shortcut the installer made from it.
 */
export const APP_ID = 'org.parley.desktop';

export interface NotificationText {
  title: string;
  body: string;
}

const BODY_CHARS = 200;
const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/g;
const MARKUP: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function messageNotification(message: { from: string | undefined; text: string; flagged: boolean }, platform: NodeJS.Platform): NotificationText {
  const title = (message.from ?? 'New message').replace(BIDI_CONTROLS, '');
  if (message.flagged) return { title, body: 'A message that could not be verified' };
  const chars = [...message.text.replace(BIDI_CONTROLS, '')];
  const text = chars.length > BODY_CHARS ? `${chars.slice(0, BODY_CHARS).join('')}…` : chars.join('');
  return { title, body: platform === 'linux' ? text.replace(/[&<>"']/g, (c) => MARKUP[c] ?? c) : text };
}

export interface IncomingNote {
  peer: string;
  text: string;
  flagged: boolean;
}

export interface NotifierOptions {
  /** Shows one notification (the shell: Electron's Notification, if the user wants them). */
  show(note: NotificationText): void;
  /** Display names by user id, read once per burst. */
  names(): Promise<ReadonlyMap<string, string>>;
  platform: NodeJS.Platform;
  /** How long a burst gathers before it is shown. Default 500 ms. */
  gatherMs?: number;
}

/** More senders than this in one burst are told in one summary. */
const MAX_SENDERS = 3;

/**
 * Desktop notifications for incoming messages, gathered over a short burst: a backlog of a
 * thousand messages after a reconnect shows one notification per sender ("12 new messages"),
 * or one summary for many senders, instead of a thousand.
 */
export function createNotifier(options: NotifierOptions): { add(message: IncomingNote): void; close(): void } {
  /** Per sender: the burst's first message (shown when it stays the only one) and how many came. */
  const waiting = new Map<string, { first: IncomingNote; count: number }>();
  let timer: NodeJS.Timeout | undefined;
  const flush = async () => {
    timer = undefined;
    const burst = [...waiting.values()];
    waiting.clear();
    const names = await options.names();
    if (burst.length > MAX_SENDERS) {
      const total = burst.reduce((sum, b) => sum + b.count, 0);
      options.show({ title: 'Parley', body: `${total} new messages from ${burst.length} people` });
      return;
    }
    for (const { first, count } of burst) {
      const shown = count === 1 ? first : { text: `${count} new messages`, flagged: false };
      options.show(messageNotification({ from: names.get(first.peer), text: shown.text, flagged: shown.flagged }, options.platform));
    }
  };
  return {
    add(message) {
      const sender = waiting.get(message.peer);
      if (sender) sender.count += 1;
      else waiting.set(message.peer, { first: message, count: 1 });
      // A notification that cannot be shown (names unreadable meanwhile) is dropped, never a crash of the app.
      timer ??= setTimeout(() => void flush().catch(() => undefined), options.gatherMs ?? 500);
    },
    close() {
      clearTimeout(timer);
      waiting.clear();
    },
  };
}
