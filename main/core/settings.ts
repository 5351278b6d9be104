// What the messenger keeps in the history's settings table: the profile's name, the window's
// settings and the relays joined lately (the last two as JSON, over defaults).
import type { ConnectionStatus, RememberedRelay, Settings } from '../../preload/contract.ts';
import type { History } from './history/index.ts';

const DEFAULT_SETTINGS: Settings = { notifications: true, theme: 'system', hostPort: 47800 };

const json = <T>(history: History, key: string, fallback: T): T => {
  const text = history.getSetting(key);
  return text === undefined ? fallback : { ...fallback, ...(JSON.parse(text) as T) };
};

/** The profile's name; undefined until the profile is set up. */
export const profileName = (history: History): string | undefined => history.getSetting('profile.name');

export const settingsOf = (history: History): Settings => json(history, 'settings', DEFAULT_SETTINGS);

/** Saves a change to the settings; answers them as they are now. */
export function changeSettings(history: History, patch: Partial<Settings>): Settings {
  const next = { ...settingsOf(history), ...patch };
  history.setSetting('settings', JSON.stringify(next));
  return next;
}

export const rememberedRelays = (history: History): RememberedRelay[] => json<{ list: RememberedRelay[] }>(history, 'relays', { list: [] }).list;

/** Puts the relay just joined first among the remembered ones (20 at most). */
export function rememberRelay(history: History, online: Extract<ConnectionStatus, { state: 'online' }>): void {
  const remembered = rememberedRelays(history).filter((r) => r.address !== online.relay);
  history.setSetting('relays', JSON.stringify({ list: [{ address: online.relay, name: online.relayName, lastUsed: Date.now() }, ...remembered].slice(0, 20) }));
}
