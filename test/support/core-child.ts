// Test support: a real messenger core in a process of its own, so that a test can kill it with
// SIGKILL (RELIABILITY.md B3, B11). Forked with an IPC channel and three arguments: its data
// folder, its display name and the relay's address. Takes ChildCommands over IPC and reports
// ChildEvents the same way; a command that fails is reported as an error event.
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
  | { type: 'error'; message: string };

const [dataDir, name, address] = process.argv.slice(2);
const tell = (event: ChildEvent) => process.send?.(event);

if (!process.send || !dataDir || !name || !address) {
  console.error('usage: fork core-child.ts <dataDir> <name> <relay address> (with an IPC channel)');
  process.exit(2);
}
// The parent went away: nobody is left to kill us.
process.on('disconnect', () => process.exit(0));

const core = await startCore({ dataDir, name });
const { handlers } = core.messenger;
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
