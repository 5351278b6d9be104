// Leveled, one-line logs: `time level message key=value ...`. Never message contents.
export type Level = 'debug' | 'info' | 'warn' | 'error';
export type Fields = Record<string, string | number | boolean | undefined>;
export type Logger = Record<Level, (message: string, fields?: Fields) => void>;

const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
export const LEVELS = Object.keys(ORDER) as Level[];

function format(level: Level, message: string, fields: Fields | undefined, now: Date): string {
  let line = `${now.toISOString()} ${level.toUpperCase().padEnd(5)} ${message}`;
  for (const [key, value] of Object.entries(fields ?? {})) {
    if (value === undefined) continue;
    const text = String(value);
    line += ` ${key}=${/[\s"=]/.test(text) ? JSON.stringify(text) : text}`;
  }
  return line;
}

export function createLogger(options: { level?: Level; write?: (line: string) => void } = {}): Logger {
  const min = ORDER[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const at = (level: Level) => (message: string, fields?: Fields) => {
    if (ORDER[level] >= min) write(format(level, message, fields, new Date()));
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

const ignore = (): void => undefined;
export const silentLogger: Logger = { debug: ignore, info: ignore, warn: ignore, error: ignore };
