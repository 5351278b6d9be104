// Times as a person reads them: "14:05", "Yesterday", "last seen 5 min ago".
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export function startOfDay(at: number): number {
  const d = new Date(at);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

export function sameDay(a: number, b: number): boolean {
  return startOfDay(a) === startOfDay(b);
}

// toLocale*String builds a formatter on every call; rows format on every render, so keep one each.
const CLOCK = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const FULL = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

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
  const date = new Date(at);
  if (days > 1 && days < 7) return date.toLocaleDateString(undefined, { weekday: 'long' });
  const sameYear = date.getFullYear() === new Date(now).getFullYear();
  return date.toLocaleDateString(undefined, sameYear ? { weekday: 'short', day: 'numeric', month: 'long' } : { day: 'numeric', month: 'long', year: 'numeric' });
}

/** Compact time for lists: clock today, weekday this week, else a short date. */
export function shortWhen(at: number, now = Date.now()): string {
  const days = Math.round((startOfDay(now) - startOfDay(at)) / DAY);
  if (days === 0) return clock(at);
  if (days === 1) return 'Yesterday';
  if (days > 1 && days < 7) return new Date(at).toLocaleDateString(undefined, { weekday: 'short' });
  return new Date(at).toLocaleDateString(undefined, { day: 'numeric', month: 'short' });
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
