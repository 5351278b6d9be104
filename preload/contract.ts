// The typed API between the renderer and the main process: every command with its
// arguments and result, every event with its payload. The renderer imports only types.

export interface AppError {
  code: string;
  message: string;
}
export type Result<T> = { ok: true; value: T } | { ok: false; error: AppError };

export interface AppInfo {
  version: string;
  protocol: number;
  platform: string;
}

/** Commands: name -> [argument, result]. Channel names are `domain:verb`. */
export interface Commands {
  'app:info': [null, AppInfo];
}
export type CommandName = keyof Commands;
export const COMMAND_NAMES = ['app:info'] as const satisfies readonly CommandName[];

/** What window.parley offers: one named function per command. */
export interface ParleyApi {
  appInfo(): Promise<Result<AppInfo>>;
}

declare global {
  interface Window {
    parley: ParleyApi;
  }
}
