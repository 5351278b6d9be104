// How much room a message has. Main refuses a text over TEXT_LIMIT characters, and one whose
// encrypted body is over the relay's 32 KiB: letters outside ASCII take two to four bytes in
// UTF-8, so a long text in Cyrillic, CJK or emoji reaches the second limit first. The window
// counts both, so that what it says is left is what main will take.

/** The relay's cap on a message body, in bytes (relay/protocol.ts LIMITS.bodyBytes; a test ties them). */
export const BODY_BYTES = 32 * 1024;

/**
 * The size of what main/core/crypto.ts seal() makes of `text`: {"t":"text","text":…} as UTF-8,
 * its 16-byte tag added, base64url without padding, in a JSON envelope of 180 bytes (keys,
 * nonce and signature). A test checks it against seal() itself.
 */
export function sealedBytes(text: string): number {
  const plain = new TextEncoder().encode(JSON.stringify({ t: 'text', text })).length + 16;
  // Base64 without padding: four characters for every three bytes, then two or three for the rest.
  const rest = plain % 3;
  return 180 + Math.floor(plain / 3) * 4 + (rest === 0 ? 0 : rest + 1);
}

/** An empty text's sealed size: what every character adds is measured above it. */
const EMPTY_BYTES = sealedBytes('');

/**
 * Characters still to go before a limit; negative when over, by how many must go from the end.
 * The room is counted in characters like those typed (the spare bytes over their average
 * size, rounded down); the excess exactly, as the longest beginning of the text that fits.
 */
export function roomLeft(text: string, textLimit: number): number {
  const byCharacters = textLimit - text.length;
  const size = sealedBytes(text);
  if (size <= BODY_BYTES) {
    const perCharacter = text.length > 0 ? Math.max(1, (size - EMPTY_BYTES) / text.length) : 1;
    return Math.min(byCharacters, Math.floor((BODY_BYTES - size) / perCharacter));
  }
  let fits = 0;
  let over = Math.min(text.length, textLimit + 1);
  while (over - fits > 1) {
    const middle = Math.floor((fits + over) / 2);
    if (sealedBytes(text.slice(0, middle)) <= BODY_BYTES) fits = middle;
    else over = middle;
  }
  return Math.min(byCharacters, fits - text.length);
}

/** The first `max` characters of `text` (UTF-16 units), never ending between the halves of a surrogate pair. */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  const last = text.charCodeAt(max - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}
