// What the desktop notification for a new message says. The text is the sender's: on Linux
// the notification server reads the body as markup (<b>, <a href>, <img>: the freedesktop
// notification spec), so there it is escaped and shows exactly as typed. Bidi controls that
// would reorder it are dropped, and it is cut at 200 characters without splitting one.

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
