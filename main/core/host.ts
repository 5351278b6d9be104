// Hosting: the relay from relay/ runs inside the app, on the LAN, with its data under the
// app's data folder, advertised over mDNS. The hosting user joins it like anyone else.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import type { HostInfo, Result } from '../../preload/contract.ts';
import { createRelay, type Relay } from '../../relay/server.ts';
import { openSqliteStore } from '../../relay/mailbox/sqlite.ts';
import type { RelayStore } from '../../relay/mailbox/store.ts';
import { isDamaged } from '../../relay/sqlite/damaged.ts';
import { joinAddresses } from '../../relay/addresses.ts';
import type { Logger } from '../../relay/log.ts';

export interface Advertisement {
  stop(): Promise<void>;
}
export type Advertise = (service: { name: string; port: number; relayId: string; accessCode: boolean }) => Advertisement;

export interface HostController {
  readonly info: HostInfo | null;
  start(options: { port: number; open: boolean; relayName: string }): Promise<Result<HostInfo>>;
  newCode(): Promise<HostInfo>;
  stop(): Promise<void>;
}

/** Ten characters from an alphabet without look-alikes (no 0/O, 1/l/I), grouped for reading aloud. */
export function generateAccessCode(): string {
  const alphabet = 'abcdefghjkmnpqrstuvwxyz23456789';
  let code = '';
  for (let i = 0; i < 10; i++) code += alphabet[randomInt(alphabet.length)];
  return `${code.slice(0, 5)}-${code.slice(5)}`;
}

const ACCESS_CODE = /^[a-z2-9]{5}-[a-z2-9]{5}$/;

/**
 * The access code kept in the hosted relay's folder: colleagues who joined with it reconnect
 * after the host stops and starts hosting again, or restarts the app. Only newCode() replaces it.
 */
function keptAccessCode(dir: string): string {
  const file = join(dir, 'access-code');
  let kept = '';
  try {
    kept = readFileSync(file, 'utf8').trim();
  } catch {
    // none yet
  }
  if (ACCESS_CODE.test(kept)) return kept;
  return keepAccessCode(dir, generateAccessCode());
}

function keepAccessCode(dir: string, code: string): string {
  writeFileSync(join(dir, 'access-code'), `${code}\n`, { mode: 0o600 });
  return code;
}

export function createHost(options: { dataDir: string; host?: string; advertise?: Advertise; log?: Logger }): HostController {
  let relay: Relay | null = null;
  let ad: Advertisement | null = null;
  let info: HostInfo | null = null;
  const bindHost = options.host ?? '0.0.0.0';
  /** The hosted relay's folder: its database and its access code. */
  const dir = join(options.dataDir, 'relay');

  const advertise = async () => {
    await ad?.stop();
    ad = relay && info && options.advertise ? options.advertise({ name: info.relayName, port: info.port, relayId: relay.relayId, accessCode: info.accessCode !== null }) : null;
  };

  return {
    get info() {
      return info;
    },
    async start({ port, open, relayName }) {
      if (relay && info) return { ok: true, value: info };
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const accessCode = open ? undefined : keptAccessCode(dir);
      // Synced group commits, as history.db's: a laptop's power cut must not take back what the
      // relay acknowledged to a sender (at a chat's pace the sync costs nothing noticeable).
      let store: RelayStore;
      try {
        store = openSqliteStore({ path: join(dir, 'relay.db'), durability: 'full', ...(options.log ? { log: options.log } : {}) });
      } catch (error) {
        if (!isDamaged(error)) throw error;
        return { ok: false, error: { code: 'E_DAMAGED', message: `The hosted relay's data (${join(dir, 'relay.db')}) is damaged, so hosting could not start. Parley leaves it as it is: restore it from a backup, or move the folder ${dir} away to host afresh (with a new access code; messages it held for people who were away are then lost). Your own history is not affected.` } };
      }
      const candidate = createRelay({ store, name: relayName, ...(accessCode ? { accessCode } : {}), ...(options.log ? { log: options.log } : {}) });
      try {
        const address = await candidate.listen(port, bindHost);
        relay = candidate;
        info = { port: address.port, addresses: joinAddresses(bindHost, address.port), accessCode: accessCode ?? null, relayName, relayId: candidate.relayId };
      } catch (error) {
        await candidate.close();
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE') return { ok: false, error: { code: 'E_PORT_IN_USE', message: `Port ${port} is already in use on this computer. Choose another port in Settings.` } };
        if (code === 'EACCES') return { ok: false, error: { code: 'E_PORT_DENIED', message: `This computer does not allow Parley to use port ${port}. Choose one above 1024.` } };
        throw error;
      }
      await advertise();
      return { ok: true, value: info };
    },
    async newCode() {
      if (!relay || !info) throw new Error('not hosting');
      const code = keepAccessCode(dir, generateAccessCode());
      relay.setAccessCode(code);
      info = { ...info, accessCode: code };
      await advertise();
      return info;
    },
    async stop() {
      await ad?.stop();
      ad = null;
      await relay?.close();
      relay = null;
      info = null;
    },
  };
}
