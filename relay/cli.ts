// The headless relay: `npm run relay -- --port 47800 --data ./relay-data`.
// The only relay file that reads the environment, opens files or listens.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { createRelay } from './server.ts';
import { joinAddresses } from './addresses.ts';
import { openSqliteStore } from './mailbox/sqlite.ts';
import { createLogger, LEVELS } from './log.ts';
import { DisplayNameSchema, LIMITS, PROTOCOL_VERSION } from './protocol.ts';

const HELP = `Parley relay (protocol ${PROTOCOL_VERSION}): carries messages between Parley apps.

Usage: npm run relay -- [options]

Options (each also from the environment variable shown):
  --port <n>              port to listen on (PARLEY_PORT, default 47800)
  --host <addr>           address to bind (PARLEY_HOST, default 0.0.0.0: every interface)
  --data <dir>            folder for the relay database (PARLEY_DATA, default ./relay-data)
  --access-code <code>    require this code to join (PARLEY_ACCESS_CODE, default: open)
  --name <text>           name people see (PARLEY_RELAY_NAME, default: host name)
  --allowed-origin <url>  browser origin allowed to connect; repeatable (PARLEY_ALLOWED_ORIGINS, comma-separated)
  --max-connections <n>   open sockets per address (PARLEY_MAX_CONNECTIONS, default 20)
  --durability <mode>     normal: survives a crash; full: also power loss (PARLEY_DURABILITY, default normal)
  --log-level <level>     debug, info, warn or error (PARLEY_LOG_LEVEL, default info)
  -h, --help              show this help
`;

const ConfigSchema = z.strictObject({
  port: z.coerce.number().int().min(0).max(65535),
  host: z.string().min(1),
  data: z.string().min(1),
  accessCode: z.string().min(1).max(LIMITS.accessCodeChars).optional(),
  name: DisplayNameSchema.optional(),
  allowedOrigins: z.array(z.url()),
  maxConnections: z.coerce.number().int().min(1).max(100_000),
  durability: z.enum(['normal', 'full']),
  logLevel: z.enum(LEVELS),
});
type Config = z.infer<typeof ConfigSchema>;

function readConfig(argv: string[], env: NodeJS.ProcessEnv): Config | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      data: { type: 'string' },
      'access-code': { type: 'string' },
      name: { type: 'string' },
      'allowed-origin': { type: 'string', multiple: true },
      'max-connections': { type: 'string' },
      durability: { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  const origins = values['allowed-origin'] ?? env.PARLEY_ALLOWED_ORIGINS?.split(',').map((s) => s.trim()).filter(Boolean) ?? [];
  const parsed = ConfigSchema.safeParse({
    port: values.port ?? env.PARLEY_PORT ?? 47800,
    host: values.host ?? env.PARLEY_HOST ?? '0.0.0.0',
    data: values.data ?? env.PARLEY_DATA ?? './relay-data',
    accessCode: values['access-code'] ?? (env.PARLEY_ACCESS_CODE || undefined),
    name: values.name ?? (env.PARLEY_RELAY_NAME || undefined),
    allowedOrigins: origins,
    maxConnections: values['max-connections'] ?? env.PARLEY_MAX_CONNECTIONS ?? 20,
    durability: values.durability ?? env.PARLEY_DURABILITY ?? 'normal',
    logLevel: values['log-level'] ?? env.PARLEY_LOG_LEVEL ?? 'info',
  });
  if (!parsed.success) {
    const names: Record<string, string> = { accessCode: 'access-code', allowedOrigins: 'allowed-origin', maxConnections: 'max-connections', logLevel: 'log-level' };
    const issue = parsed.error.issues[0];
    const key = String(issue?.path[0] ?? '');
    throw new Error(`--${names[key] ?? key}: ${issue?.message ?? 'invalid value'}`);
  }
  return parsed.data;
}

async function main(): Promise<number> {
  let config: Config | 'help';
  try {
    config = readConfig(process.argv.slice(2), process.env);
  } catch (error) {
    process.stderr.write(`parley relay: ${error instanceof Error ? error.message : String(error)}\nTry --help.\n`);
    return 2;
  }
  if (config === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  const log = createLogger({ level: config.logLevel });
  const dataDir = resolve(config.data);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const store = openSqliteStore({ path: join(dataDir, 'relay.db'), durability: config.durability, log });
  const relay = createRelay({
    store,
    log,
    ...(config.name ? { name: config.name } : {}),
    ...(config.accessCode ? { accessCode: config.accessCode } : {}),
    allowedOrigins: config.allowedOrigins,
    maxConnectionsPerAddress: config.maxConnections,
  });
  try {
    const address = await relay.listen(config.port, config.host);
    log.info('listening', { host: config.host, port: address.port, relay: relay.relayId, data: dataDir });
    process.stdout.write(
      [
        `Parley relay listening on ${config.host}:${address.port}`,
        `Join from the app with: ${joinAddresses(config.host, address.port).join('  or  ')}`,
        config.accessCode ? 'An access code is required to join.' : 'Open: anyone who can reach it may join (set --access-code to restrict).',
      ].join('\n') + '\n',
    );
  } catch (error) {
    await store.close();
    const code = (error as NodeJS.ErrnoException).code;
    process.stderr.write(`parley relay: cannot listen on ${config.host}:${config.port}: ${code === 'EADDRINUSE' ? 'the port is already in use (choose another with --port)' : String(error)}\n`);
    return 1;
  }

  return new Promise<number>((done) => {
    const stop = (signal: string) => {
      log.info('stopping', { signal });
      relay.close().then(
        () => done(0),
        (error: unknown) => {
          log.error('stop failed', { error: String(error) });
          done(1);
        },
      );
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

process.exitCode = await main();
