// The connection in words, for the status bar and the join screen.
import type { AppStatus } from '../../../preload/contract.ts';

export type Tone = 'ok' | 'busy' | 'warn' | 'error' | 'idle';

export interface StatusLine {
  tone: Tone;
  text: string;
  detail: string | null;
}

/** Online, to the relay this app hosts (a colleague's relay may be joined while hosting). */
export function onOwnRelay(status: AppStatus): boolean {
  const c = status.connection;
  return c.state === 'online' && status.hosting !== null && c.relayId === status.hosting.relayId;
}

export function describeStatus(status: AppStatus): StatusLine {
  const c = status.connection;
  const hosting = status.hosting;
  switch (c.state) {
    case 'offline':
      return hosting ? { tone: 'warn', text: `Hosting on port ${hosting.port}, not connected`, detail: null } : { tone: 'idle', text: 'Offline', detail: 'Messages you write wait here until you connect.' };
    case 'connecting':
      return { tone: 'busy', text: `Connecting to ${c.relay}…`, detail: null };
    case 'online': {
      if (hosting && onOwnRelay(status)) {
        const where = hosting.addresses[0] ?? `port ${hosting.port}`;
        return { tone: 'ok', text: `Hosting at ${where}`, detail: hosting.accessCode ? `Access code ${hosting.accessCode}` : 'Open to the network' };
      }
      return { tone: 'ok', text: `Connected to ${c.relayName}`, detail: hosting ? `${c.relay} · also hosting on port ${hosting.port}` : c.relay };
    }
    case 'reconnecting':
      return { tone: 'busy', text: `Reconnecting to ${c.relay}…`, detail: c.attempt > 1 ? `${c.reason} Attempt ${c.attempt}.` : c.reason };
    case 'refused':
      return { tone: 'error', text: `${c.relay} refused the connection`, detail: c.reason };
    default: {
      const unreachable: never = c;
      return unreachable;
    }
  }
}
