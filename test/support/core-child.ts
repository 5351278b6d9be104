// Test support: a real messenger core in a process of its own, so that a test can kill it with
// SIGKILL (RELIABILITY.md B3, B4, B11). Forked with an IPC channel and three arguments: its data
// folder, its display name and the relay's address. Takes ChildCommands over IPC and reports
// ChildEvents the same way; a command that fails is reported as an error event.
//
// A test hook, off unless PARLEY_TEST_STOP is set (B4): the process stops itself with SIGSTOP
// while it takes in the incoming message whose text is PARLEY_TEST_STOP_TEXT, having told its
// parent (a 'stopping' event), which then kills it. Where it stops (a StopPoint):
// - 'before-commit': inside the history transaction that stores the message, after its insert,
//   before the COMMIT: the delivery arrived and is not committed (nor, in a correct core, acknowledged);
// - 'before-ack': right after that transaction committed (message:added), before the relay is answered.
import { flushCompileCache } from 'node:module';
import Database from 'better-sqlite3';
import type { MessageState } from '../../preload/contract.ts';
import { knows, must, online, startCore } from './messenger.ts';

export type ChildCommand =
  /** Sends `count` messages to `peer`, texts `${prefix}${i}`, each in a turn of its own (as from the window). */
  | { cmd: 'send'; peer: string; count: number; prefix: string }
  /** How many outgoing messages are in each state. */
  | { cmd: 'report' };

export type ChildEvent =
  | { type: 'ready'; id: string }
  /** A message:send call returned: the message is stored, in the outbox. */
  | { type: 'queued'; id: string; text: string }
  /** The relay acknowledged it (the outbox marked it sent), or a receipt moved it further. */
  | { type: 'updated'; id: string; text: string; state: MessageState }
  /** The last message of a send command is queued. */
  | { type: 'sent-all' }
  | { type: 'report'; states: Partial<Record<MessageState, number>> }
  /** The test hook's point is reached for this incoming message: SIGSTOP follows at once. */
  | { type: 'stopping'; at: StopPoint; id: string }
  | { type: 'error'; message: string };

export type StopPoint = 'before-commit' | 'before-ack';

const [dataDir, name, address] = process.argv.slice(2);
const tell = (event: ChildEvent) => process.send?.(event);

if (!process.send || !dataDir || !name || !address) {
  console.error('usage: fork core-child.ts <dataDir> <name> <relay address> (with an IPC channel)');
  process.exit(2);
}
// The parent went away: nobody is left to kill us.
process.on('disconnect', () => process.exit(0));

const stopAt = process.env.PARLEY_TEST_STOP as StopPoint | undefined;
const stopText = process.env.PARLEY_TEST_STOP_TEXT;
let stopped = false;
/** Tells the parent (a small IPC write goes out at once), then stops this process where it stands. */
function stopHere(id: string): void {
  if (stopped || !stopAt) return;
  stopped = true;
  tell({ type: 'stopping', at: stopAt, id });
  process.kill(process.pid, 'SIGSTOP');
}
const isStopMessage = (item: unknown): item is { id: string; text: string } =>
  typeof item === 'object' && item !== null && 'id' in item && typeof item.id === 'string' && 'text' in item && item.text === stopText;

if (stopAt === 'before-commit') {
  // Every transaction body the history defines runs through this wrapper: when it was given
  // the message to stop at (history.addIncoming's items) it has inserted it, and COMMIT is next.
  type Body = (...args: unknown[]) => unknown;
  const transaction = Database.prototype.transaction as unknown as (this: Database.Database, body: Body) => unknown;
  const hooked = function (this: Database.Database, body: Body) {
    return transaction.call(this, function (this: unknown, ...args: unknown[]) {
      const result = body.apply(this, args);
      const items = args[0];
      const target = Array.isArray(items) ? items.find(isStopMessage) : undefined;
      if (target) stopHere(target.id);
      return result;
    });
  };
  Database.prototype.transaction = hooked as unknown as typeof Database.prototype.transaction;
} else if (stopAt !== undefined && stopAt !== 'before-ack') {
  console.error(`PARLEY_TEST_STOP: unknown stop point ${String(stopAt)}`);
  process.exit(2);
}

const core = await startCore({ dataDir, name });
const { handlers } = core.messenger;
if (stopAt === 'before-ack') {
  // Emitted by the inbox right after the chunk's transaction committed; it answers the relay later.
  core.messenger.on('message:added', (m) => {
    if (m.direction === 'in' && m.text === stopText) stopHere(m.id);
  });
}
core.messenger.on('message:updated', (m) => {
  if (m.direction === 'out') tell({ type: 'updated', id: m.id, text: m.text, state: m.state });
});

async function run(command: ChildCommand): Promise<void> {
  switch (command.cmd) {
    case 'send': {
      await knows(core, command.peer);
      for (let i = 0; i < command.count; i++) {
        const message = must(await handlers['message:send']({ peer: command.peer, text: `${command.prefix}${i}` }));
        tell({ type: 'queued', id: message.id, text: message.text });
        // Each send comes from the window in a task of its own; the outbox and the socket run in between.
        await new Promise((resolve) => setImmediate(resolve));
      }
      tell({ type: 'sent-all' });
      return;
    }
    case 'report': {
      const states: Partial<Record<MessageState, number>> = {};
      for (const person of must(await handlers['people:list'](null))) {
        for (let before: number | undefined; ;) {
          const page = must(await handlers['conversation:page']({ peer: person.id, limit: 500, ...(before === undefined ? {} : { before }) }));
          for (const m of page) if (m.direction === 'out') states[m.state] = (states[m.state] ?? 0) + 1;
          if (page.length < 500) break;
          before = page[0]?.n;
        }
      }
      tell({ type: 'report', states });
      return;
    }
    default:
      return command satisfies never;
  }
}

process.on('message', (command: ChildCommand) => {
  run(command).catch((error: unknown) => tell({ type: 'error', message: error instanceof Error ? error.message : String(error) }));
});

must(await handlers['relay:join']({ address }));
await online(core);
tell({ type: 'ready', id: core.id });
// Started with NODE_COMPILE_CACHE, it saves what it compiled now: the next life starts sooner
// (a life killed with SIGKILL never gets to save it at exit). Without it, this does nothing.
flushCompileCache();
