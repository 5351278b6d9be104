// Times as a person reads them: "14:05", "Yesterday", "last seen 5 min ago".
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export function startOfDay(at: number): number {
  const d = new Date(at);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

/** The local calendar day as one number (one Date, no strings): equal for times on the same day. */
export function dayKey(at: number): number {
  const d = new Date(at);
  return (d.getFullYear() * 16 + d.getMonth()) * 32 + d.getDate();
}

export function sameDay(a: number, b: number): boolean {
  return dayKey(a) === dayKey(b);
}

// toLocale*String builds a formatter on every call; rows format on every render, so keep one each.
const CLOCK = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const FULL = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const WEEKDAY = new Intl.DateTimeFormat(undefined, { weekday: 'long' });
const WEEKDAY_SHORT = new Intl.DateTimeFormat(undefined, { weekday: 'short' });
const DAY_THIS_YEAR = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'long' });
const DAY_OTHER_YEAR = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'long', year: 'numeric' });
const DAY_SHORT = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });

export function clock(at: number): string {
  return CLOCK.format(at);
}

/** Date and time in full, for tooltips. */
export function fullTime(at: number): string {
  return FULL.format(at);
}

export function dayLabel(at: number, now = Date.now()): string {
  const days = Math.round((startOfDay(now) - startOfDay(at)) / DAY);
  if (days === 0) return 'Today';
  if (days === 1) return 'Yesterday';
  if (days > 1 && days < 7) return WEEKDAY.format(at);
  const sameYear = new Date(at).getFullYear() === new Date(now).getFullYear();
  return (sameYear ? DAY_THIS_YEAR : DAY_OTHER_YEAR).format(at);
}

/** Compact time for lists: clock today, weekday this week, else a short date. */
export function shortWhen(at: number, now = Date.now()): string {
  const days = Math.round((startOfDay(now) - startOfDay(at)) / DAY);
  if (days === 0) return clock(at);
  if (days === 1) return 'Yesterday';
  if (days > 1 && days < 7) return WEEKDAY_SHORT.format(at);
  return DAY_SHORT.format(at);
}

export function lastSeen(at: number, now = Date.now()): string {
  if (at <= 0) return 'not seen yet';
  const ago = Math.max(0, now - at);
  if (ago < MINUTE) return 'last seen just now';
  if (ago < HOUR) return `last seen ${Math.floor(ago / MINUTE)} min ago`;
  if (ago < DAY && sameDay(at, now)) return `last seen today at ${clock(at)}`;
  if (Math.round((startOfDay(now) - startOfDay(at)) / DAY) === 1) return `last seen yesterday at ${clock(at)}`;
  return `last seen ${shortWhen(at, now)}`;
}
