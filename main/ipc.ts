// Binds the contract to ipcMain: only the app's own window may call, and every argument
// is parsed before a handler runs. Nothing throws across the boundary.
import type { IpcMain, IpcMainInvokeEvent } from 'electron';
import { z } from 'zod';
import type { Commands, CommandName, DraftLimit, Result, TextLimit } from '../preload/contract.ts';
import { DisplayNameSchema, UserIdSchema } from '../relay/protocol.ts';
import { PASSPHRASE_MAX, PASSPHRASE_MIN } from './core/passphrase.ts';
import { DAMAGED_ADVICE, DamagedHistoryError } from './core/history/index.ts';

export type Handlers = { [K in CommandName]: (arg: Commands[K][0]) => Promise<Result<Commands[K][1]>> };

/**
 * Longest message a person can write, in UTF-16 units: a first cap on what crosses IPC. The
 * relay's limit is in bytes of the sealed body, which message:send checks after sealing
 * (all of this fits in ASCII; in other scripts, less does).
 */
export const TEXT_LIMIT: TextLimit = 16_384;
/** Longest draft kept for a conversation (what the composer holds, not sent yet). */
export const DRAFT_LIMIT: DraftLimit = 65_536;

const peer = z.strictObject({ peer: UserIdSchema });
const n = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const limit = z.number().int().min(1).max(500).optional();
const passphrase = z.string().min(1).max(PASSPHRASE_MAX, `a passphrase can have up to ${PASSPHRASE_MAX} characters`);

export const ARGUMENTS: { [K in CommandName]: z.ZodType<Commands[K][0], unknown> } = {
  'app:info': z.null(),
  'status:get': z.null(),
  'profile:get': z.null(),
  'profile:setup': z.strictObject({ name: DisplayNameSchema }),
  'host:start': z.strictObject({ port: z.number().int().min(1024).max(65535).optional(), open: z.boolean() }),
  'host:stop': z.null(),
  'host:newCode': z.null(),
  'relay:join': z.strictObject({ address: z.string().trim().min(1).max(300), accessCode: z.string().max(128).optional() }),
  'relay:leave': z.null(),
  'relay:remembered': z.null(),
  'relay:found': z.null(),
  'people:list': z.null(),
  'conversation:page': z.strictObject({ peer: UserIdSchema, before: n.optional(), limit }),
  'conversation:from': z.strictObject({ peer: UserIdSchema, n, limit }),
  'conversation:firstUnread': peer,
  'conversation:markRead': z.strictObject({ peer: UserIdSchema, upTo: n }),
  'conversation:clear': peer,
  'message:send': z.strictObject({ peer: UserIdSchema, text: z.string().min(1).max(TEXT_LIMIT, `a message can hold up to ${TEXT_LIMIT} characters`) }),
  'message:retry': z.strictObject({ n }),
  'message:delete': z.strictObject({ n }),
  'draft:save': z.strictObject({ peer: UserIdSchema, text: z.string().max(DRAFT_LIMIT, `a draft can hold up to ${DRAFT_LIMIT} characters`) }),
  'typing:set': z.strictObject({ peer: UserIdSchema, typing: z.boolean() }),
  'search:query': z.strictObject({ query: z.string().max(200) }),
  'peer:safety': peer,
  'peer:verify': z.strictObject({ peer: UserIdSchema, verified: z.boolean() }),
  'peer:acceptKey': peer,
  'settings:get': z.null(),
  'settings:set': z.strictObject({
    notifications: z.boolean().optional(),
    theme: z.enum(['system', 'light', 'dark']).optional(),
    hostPort: z.number().int().min(1024).max(65535).optional(),
  }),
  'link:open': z.strictObject({ url: z.string().max(10_000) }),
  'identity:unlock': z.strictObject({ passphrase }),
  'identity:setPassphrase': z.strictObject({
    passphrase: passphrase.min(PASSPHRASE_MIN, `a passphrase needs at least ${PASSPHRASE_MIN} characters`),
    current: passphrase.optional(),
  }),
  'identity:removePassphrase': z.strictObject({ current: passphrase }),
};

/** True when the call comes from the app's own page, in the top frame. */
export function trustedSender(event: Pick<IpcMainInvokeEvent, 'senderFrame'>, appUrl: string): boolean {
  const frame = event.senderFrame;
  if (!frame || frame.parent !== null) return false;
  try {
    const from = new URL(frame.url);
    const app = new URL(appUrl);
    return from.origin === app.origin && from.pathname === app.pathname;
  } catch {
    return false; // an unparsable URL is no page of ours
  }
}

/** Checks sender and argument, then runs the handler; every failure is a typed result. */
export async function dispatch<K extends CommandName>(name: K, handlers: Handlers, event: Pick<IpcMainInvokeEvent, 'senderFrame'>, arg: unknown, appUrl: string): Promise<Result<unknown>> {
  if (!trustedSender(event, appUrl)) return { ok: false, error: { code: 'E_SENDER', message: 'not the app window' } };
  const parsed = ARGUMENTS[name].safeParse(arg);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, error: { code: 'E_SCHEMA', message: issue ? `${issue.path.join('.') || 'argument'}: ${issue.message}` : 'bad argument' } };
  }
  try {
    return await handlers[name](parsed.data);
  } catch (error) {
    console.error(`ipc ${name} failed`, error);
    // A damaged page inside history.db (a damaged header stops the start): what touches it fails.
    if (error instanceof DamagedHistoryError) return { ok: false, error: { code: 'E_DAMAGED', message: `Part of the message history (${error.path}) is damaged, so this could not be done. ${DAMAGED_ADVICE}` } };
    return { ok: false, error: { code: 'E_INTERNAL', message: 'Something went wrong; the details are in the log.' } };
  }
}

export function bindIpc(ipc: Pick<IpcMain, 'handle'>, handlers: Handlers, appUrl: () => string): void {
  for (const name of Object.keys(ARGUMENTS) as CommandName[]) {
    ipc.handle(name, (event, arg: unknown) => dispatch(name, handlers, event, arg, appUrl()));
  }
}
