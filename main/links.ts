// Which links may leave the app: http(s) only, shown in full (IDN hosts as punycode) in a
// confirmation before anything opens. Anything else is refused without a dialog: a prompt
// for a file:, smb: or custom-scheme link would only teach people to click through.
import type { MessageBoxOptions, MessageBoxReturnValue } from 'electron';

export type LinkDecision = { open: true; url: string; host: string } | { open: false; reason: string };

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
  // URL.href and URL.host show an internationalised host in punycode, so look-alike letters are visible.
  return { open: true, url: url.href, host: url.host };
}

/** What opening a link needs from Electron: dialog.showMessageBox and shell.openExternal. */
export interface LinkOpener {
  showMessageBox(options: MessageBoxOptions): Promise<Pick<MessageBoxReturnValue, 'response'>>;
  openExternal(url: string): Promise<void>;
  /** Told why a link was refused (never shown to the user as a dialog). */
  refused?(reason: string): void;
}

/** Opens a web link in the browser once the user confirms it; true when it was opened. */
export async function openLink(raw: string, electron: LinkOpener): Promise<boolean> {
  const decision = linkPolicy(raw);
  if (!decision.open) {
    electron.refused?.(decision.reason);
    return false;
  }
  const answer = await electron.showMessageBox({
    type: 'question',
    buttons: ['Open', 'Cancel'],
    defaultId: 1,
    cancelId: 1,
    message: `Open this link to ${decision.host} in your browser?`,
    detail: decision.url,
  });
  if (answer.response !== 0) return false;
  await electron.openExternal(decision.url);
  return true;
}
