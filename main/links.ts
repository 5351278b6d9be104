// Which links may leave the app: http(s) only, shown in full (IDN hosts as punycode) in a
// confirmation before anything opens.
export type LinkDecision = { open: true; url: string } | { open: false; reason: string };

export const MAX_LINK_LENGTH = 2048;

export function linkPolicy(raw: string): LinkDecision {
  if (raw.length > MAX_LINK_LENGTH) return { open: false, reason: 'This link is too long to be safe to open.' };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { open: false, reason: 'This is not a web address.' };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { open: false, reason: `Parley opens only web links, not ${url.protocol} links.` };
  // URL.href shows an internationalised host in punycode, so look-alike letters are visible.
  return { open: true, url: url.href };
}
