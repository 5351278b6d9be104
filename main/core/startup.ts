// The core the shell runs: the messenger starts as soon as the identity can be read. With a
// passphrase-sealed identity that is after identity:unlock; until then every messenger command
// answers E_LOCKED, so the window knows to ask. Plain Node, tested without Electron.
import { COMMANDS, EVENTS, type CommandName, type Commands, type Profile, type Result } from '../../preload/contract.ts';
import { createMessenger, type Messenger, type MessengerDeps } from './messenger.ts';
import type { MessengerCommands, MessengerHandlers } from './messenger-handlers.ts';
import { fail, ok } from './result.ts';
import { passphraseStore, WrongPassphraseError, type ScryptCost } from './passphrase.ts';
import { eventHub } from './events.ts';

export type CoreCommands = MessengerCommands | 'identity:unlock' | 'identity:setPassphrase' | 'identity:removePassphrase';
export type CoreHandlers = { [K in CoreCommands]: (arg: Commands[K][0]) => Promise<Result<Commands[K][1]>> };

export interface CoreDeps extends MessengerDeps {
  /** scrypt's cost for a new passphrase; tests lower it. */
  scryptCost?: ScryptCost;
}

const NOT_MESSENGER: readonly CommandName[] = ['app:info', 'link:open', 'identity:unlock', 'identity:setPassphrase', 'identity:removePassphrase'];
const MESSENGER_COMMANDS = (Object.values(COMMANDS) as CommandName[]).filter((name): name is MessengerCommands => !NOT_MESSENGER.includes(name));

const LOCKED = fail('E_LOCKED', 'Parley is locked: enter your passphrase first.');
const CLOSING = fail('E_UNAVAILABLE', 'Parley is closing.');
const WRONG = (what: string) => fail('E_PASSPHRASE', `${what} is not right.`);

export async function openCore(deps: CoreDeps) {
  const secrets = passphraseStore(deps.secrets, deps.scryptCost);
  const events = eventHub();
  let messenger: Messenger | null = null;
  let starting: Promise<Messenger> | null = null;
  let closed = false;

  /** Starts the messenger once, however many unlocks race; a failed start can be retried. */
  function start(): Promise<Messenger> {
    starting ??= createMessenger({ ...deps, secrets }).then(
      (created) => {
        for (const event of Object.values(EVENTS)) created.on(event, (payload) => events.emit(event, payload));
        messenger = created;
        return created;
      },
      (error: unknown) => {
        starting = null;
        throw error;
      },
    );
    return starting;
  }

  if (!(await secrets.locked())) await start();

  const gate = <K extends MessengerCommands>(name: K): CoreHandlers[K] =>
    (async (arg: Commands[K][0]) => (messenger ? messenger.handlers[name](arg) : LOCKED)) as CoreHandlers[K];

  /** Changes the passphrase once the messenger runs; a wrong current one is E_PASSPHRASE. Answers the new protection. */
  async function withCurrent(change: () => Promise<void>): Promise<Result<Profile['secretProtection']>> {
    if (!messenger) return LOCKED;
    try {
      await change();
    } catch (error) {
      if (error instanceof WrongPassphraseError) return WRONG('The current passphrase');
      throw error;
    }
    return ok(secrets.protection);
  }

  const handlers: CoreHandlers = {
    ...(Object.fromEntries(MESSENGER_COMMANDS.map((name) => [name, gate(name)])) as MessengerHandlers),
    'identity:unlock': async ({ passphrase }) => {
      if (closed) return CLOSING;
      try {
        await secrets.unlock(passphrase);
      } catch (error) {
        if (error instanceof WrongPassphraseError) return WRONG('That passphrase');
        throw error;
      }
      if (closed) return CLOSING;
      await start();
      return ok(null);
    },
    'identity:setPassphrase': ({ passphrase, current }) => withCurrent(() => secrets.setPassphrase(passphrase, current)),
    'identity:removePassphrase': ({ current }) => withCurrent(() => secrets.removePassphrase(current)),
  };

  return {
    handlers,
    /** The messenger once the identity is open, else null. */
    get messenger(): Messenger | null {
      return messenger;
    },
    on: events.on,
    async close(): Promise<void> {
      closed = true;
      // An unlock under way finishes starting first, then closes with the rest.
      const running = await starting?.catch(() => null);
      await running?.close();
    },
  };
}

export type Core = Awaited<ReturnType<typeof openCore>>;
