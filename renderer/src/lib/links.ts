// Splits message text into plain runs and web links. Only http(s) links become links; the
// main process confirms before anything opens, so this only has to find them.
/** `at` is where the part starts in the text (a stable key for rendering). */
export type TextPart = { kind: 'text'; at: number; text: string } | { kind: 'link'; at: number; text: string; url: string };

const LINK = /\bhttps?:\/\/[^\s<>"'`]+/giu;
// Punctuation that usually ends a sentence rather than a URL.
const TRAILING = /[.,;:!?)\]}'"»]+$/u;

/** The text's parts, or null when it has no link (most messages: one text node, no split). */
export function linkify(text: string): TextPart[] | null {
  if (!text.includes('://')) return null;
  const parts: TextPart[] = [];
  let last = 0;
  for (const match of text.matchAll(LINK)) {
    const start = match.index;
    let url = match[0];
    const trailing = TRAILING.exec(url);
    // Keep a closing parenthesis that has an opening one inside the link (wiki style).
    if (trailing) {
      let cut = trailing[0];
      if (cut.startsWith(')') && url.includes('(')) cut = cut.slice(1);
      url = url.slice(0, url.length - cut.length);
    }
    if (!isWebUrl(url)) continue;
    if (start > last) parts.push({ kind: 'text', at: last, text: text.slice(last, start) });
    parts.push({ kind: 'link', at: start, text: url, url });
    last = start + url.length;
  }
  if (parts.length === 0) return null;
  if (last < text.length) parts.push({ kind: 'text', at: last, text: text.slice(last) });
  return parts;
}

function isWebUrl(candidate: string): boolean {
  try {
    const url = new URL(candidate);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname.length > 0;
  } catch {
    return false; // not a URL after all: it stays text
  }
}
