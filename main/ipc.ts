// Binds the contract to ipcMain: only the app's own window may call, and every argument
// is parsed before a handler runs. Nothing throws across the boundary.
import type { IpcMain, IpcMainInvokeEvent } from 'electron';
import { z } from 'zod';
import type { Commands, CommandName, Result } from '../preload/contract.ts';

export type Handlers = { [K in CommandName]: (arg: Commands[K][0]) => Promise<Result<Commands[K][1]>> };

const ARGUMENTS: { [K in CommandName]: z.ZodType<Commands[K][0]> } = {
  'app:info': z.null(),
};

/** True when the call comes from the app's own page, in the top frame. */
export function trustedSender(event: Pick<IpcMainInvokeEvent, 'senderFrame'>, appUrl: string): boolean {
  const frame = event.senderFrame;
  if (!frame || frame.parent !== null) return false;
  try {
    return new URL(frame.url).origin === new URL(appUrl).origin && new URL(frame.url).pathname === new URL(appUrl).pathname;
  } catch {
    return false; // an unparsable URL is no page of ours
  }
}

export function bindIpc(ipc: Pick<IpcMain, 'handle'>, handlers: Handlers, appUrl: () => string): void {
  for (const name of Object.keys(ARGUMENTS) as CommandName[]) {
    ipc.handle(name, async (event, arg: unknown): Promise<Result<unknown>> => {
      if (!trustedSender(event, appUrl())) return { ok: false, error: { code: 'E_SENDER', message: 'not the app window' } };
      const parsed = ARGUMENTS[name].safeParse(arg);
      if (!parsed.success) return { ok: false, error: { code: 'E_SCHEMA', message: parsed.error.issues[0]?.message ?? 'bad argument' } };
      try {
        return await handlers[name](parsed.data);
      } catch (error) {
        console.error(`ipc ${name} failed`, error);
        return { ok: false, error: { code: 'E_INTERNAL', message: 'something went wrong' } };
      }
    });
  }
}
