// The headless relay: `npm run relay -- --port 47800 --data ./relay-data`, or one node of a
// cluster: `npm run relay -- --redis redis://host:6379`.
// The only relay file that reads the environment, opens files or listens.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { createRelay } from './server.ts';
import { browserOrigin } from './guard.ts';
import { joinAddresses } from './addresses.ts';
import { openSqliteStore } from './mailbox/sqlite.ts';
import type { RelayStore } from './mailbox/store.ts';
import type { RelayCluster } from './state.ts';
import { createLogger, LEVELS } from './log.ts';
import { DisplayNameSchema, LIMITS, PROTOCOL_VERSION } from './protocol.ts';

const HELP = `Parley relay (protocol ${PROTOCOL_VERSION}): carries messages between Parley apps.

Usage: npm run relay -- [options]

Options (each also from the environment variable shown; an empty variable counts as unset):
  --port <n>              port to listen on (PARLEY_PORT, default 47800)
  --host <addr>           address to bind (PARLEY_HOST, default 0.0.0.0: every interface)
  --data <dir>            folder for the relay database (PARLEY_DATA, default ./relay-data)
  --access-code <code>    require this code to join (PARLEY_ACCESS_CODE, default: open)
  --name <text>           name people see (PARLEY_RELAY_NAME, default: host name)
  --allowed-origin <url>  browser origin allowed to connect, e.g. https://app.example.com; repeatable
                          or comma-separated (PARLEY_ALLOWED_ORIGINS, comma-separated)
  --max-connections <n>   open sockets per address; TCP connections: twice this plus 10 (PARLEY_MAX_CONNECTIONS, default 20)
  --durability <mode>     normal: survives a crash; full: also power loss (PARLEY_DURABILITY, default normal)
  --mailbox-messages <n>  messages waiting for one recipient before senders get E_QUEUE_FULL
                          (PARLEY_MAILBOX_MESSAGES, default 10000)
  --mailbox-mb <n>        the same, in megabytes of message bodies (PARLEY_MAILBOX_MB, default 50)
  --redis <url>           run as one node of a cluster sharing its state in Redis, e.g. redis://10.0.0.5:6379
                          (PARLEY_REDIS; --data and --durability are then unused)
  --node-ttl <ms>         cluster: a node silent this long is dead; its users go offline (PARLEY_NODE_TTL_MS, default 10000)
  --trusted-proxy <ip>    IP address of a reverse proxy whose X-Forwarded-For names the client; repeatable
                          or comma-separated (PARLEY_TRUSTED_PROXIES, comma-separated)
  --log-level <level>     debug, info, warn or error (PARLEY_LOG_LEVEL, default info)
  -h, --help              show this help
`;

/** A whole number written in decimal: `z.coerce.number()` would take " " (as 0) or 0x1f90. */
const decimal = (min: number, max: number) => z.string().regex(/^\d+$/, 'expected a decimal number').transform(Number).pipe(z.number().int().min(min).max(max));

const ConfigSchema = z.strictObject({
  port: decimal(0, 65535),
  host: z.string().min(1),
  data: z.string().min(1),
  accessCode: z.string().min(1).max(LIMITS.accessCodeChars).optional(),
  name: DisplayNameSchema.optional(),
  allowedOrigins: z.array(z.string().refine((url) => browserOrigin(url) !== undefined, 'expected an origin such as https://app.example.com, without a path, query or fragment')),
  maxConnections: decimal(1, 100_000),
  durability: z.enum(['normal', 'full']),
  mailboxMessages: decimal(1, 10_000_000),
  mailboxMb: decimal(1, 1_000_000),
  redis: z.string().regex(/^rediss?:\/\/\S+$/, 'expected redis://host:port or rediss://host:port').optional(),
  nodeTtl: decimal(500, 600_000),
  trustedProxies: z.array(z.string().refine((address) => isIP(address) !== 0, 'expected the IP address of a proxy, such as 10.0.0.2 (not a host name or a range)')),
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
      'mailbox-messages': { type: 'string' },
      'mailbox-mb': { type: 'string' },
      redis: { type: 'string' },
      'node-ttl': { type: 'string' },
      'trusted-proxy': { type: 'string', multiple: true },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  // An empty variable (`PARLEY_PORT=` in an env file) is unset, as for the shell's ${VAR:-default}.
  const fromEnv = (name: `PARLEY_${string}`) => env[name] || undefined;
  const list = (text: string | undefined) => text?.split(',').map((s) => s.trim()).filter(Boolean);
  // Lists: the flag repeated, or comma-separated in the flag or the variable.
  const listed = (flag: string[] | undefined, variable: `PARLEY_${string}`) => (flag ? flag.flatMap((text) => list(text) ?? []) : list(fromEnv(variable))) ?? [];
  const parsed = ConfigSchema.safeParse({
    port: values.port ?? fromEnv('PARLEY_PORT') ?? '47800',
    host: values.host ?? fromEnv('PARLEY_HOST') ?? '0.0.0.0',
    data: values.data ?? fromEnv('PARLEY_DATA') ?? './relay-data',
    accessCode: values['access-code'] ?? fromEnv('PARLEY_ACCESS_CODE'),
    name: values.name ?? fromEnv('PARLEY_RELAY_NAME'),
    allowedOrigins: listed(values['allowed-origin'], 'PARLEY_ALLOWED_ORIGINS'),
    maxConnections: values['max-connections'] ?? fromEnv('PARLEY_MAX_CONNECTIONS') ?? '20',
    durability: values.durability ?? fromEnv('PARLEY_DURABILITY') ?? 'normal',
    mailboxMessages: values['mailbox-messages'] ?? fromEnv('PARLEY_MAILBOX_MESSAGES') ?? '10000',
    mailboxMb: values['mailbox-mb'] ?? fromEnv('PARLEY_MAILBOX_MB') ?? '50',
    redis: values.redis ?? fromEnv('PARLEY_REDIS'),
    nodeTtl: values['node-ttl'] ?? fromEnv('PARLEY_NODE_TTL_MS') ?? '10000',
    trustedProxies: listed(values['trusted-proxy'], 'PARLEY_TRUSTED_PROXIES'),
    logLevel: values['log-level'] ?? fromEnv('PARLEY_LOG_LEVEL') ?? 'info',
  });
  if (!parsed.success) {
    const names: Record<string, string> = { accessCode: 'access-code', allowedOrigins: 'allowed-origin', maxConnections: 'max-connections', logLevel: 'log-level', nodeTtl: 'node-ttl', trustedProxies: 'trusted-proxy', mailboxMessages: 'mailbox-messages', mailboxMb: 'mailbox-mb' };
    const issue = parsed.error.issues[0];
    const key = String(issue?.path[0] ?? '');
    throw new Error(`--${names[key] ?? key}: ${issue?.message ?? 'invalid value'}`);
  }
  return parsed.data;
}

/** The URL without its password, for logs. */
function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'redis://(unparsable)';
  }
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
  let store: RelayStore;
  let cluster: RelayCluster | undefined;
  if (config.redis) {
    log.info('joining the cluster through redis', { redis: redactedUrl(config.redis) });
    // Loaded only for a cluster node: a single relay does without the Redis client and adapter.
    const { openRedisCluster, RedisLoginRefused } = await import('./redis/cluster.ts');
    try {
      ({ store, cluster } = await openRedisCluster({ url: config.redis, nodeTtlMs: config.nodeTtl, log }));
    } catch (error) {
      if (!(error instanceof RedisLoginRefused)) throw error;
      process.stderr.write(`parley relay: --redis ${redactedUrl(config.redis)}: ${error.message}\nTry --help.\n`);
      return 2;
    }
  } else {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    store = openSqliteStore({ path: join(dataDir, 'relay.db'), durability: config.durability, log });
  }
  const relay = createRelay({
    store,
    ...(cluster ? { cluster } : {}),
    trustedProxies: config.trustedProxies,
    log,
    ...(config.name ? { name: config.name } : {}),
    ...(config.accessCode ? { accessCode: config.accessCode } : {}),
    allowedOrigins: config.allowedOrigins,
    maxConnectionsPerAddress: config.maxConnections,
    mailbox: { maxMessages: config.mailboxMessages, maxBytes: config.mailboxMb * 1024 * 1024 },
  });
  try {
    const address = await relay.listen(config.port, config.host);
    log.info('listening', { host: config.host, port: address.port, relay: relay.relayId, ...(cluster ? { node: cluster.nodeId } : { data: dataDir }) });
    process.stdout.write(
      [
        `Parley relay listening on ${config.host}:${address.port}`,
        `Join from the app with: ${joinAddresses(config.host, address.port).join('  or  ')}`,
        config.accessCode ? 'An access code is required to join.' : 'Open: anyone who can reach it may join (set --access-code to restrict).',
      ].join('\n') + '\n',
    );
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    process.stderr.write(`parley relay: cannot listen on ${config.host}:${config.port}: ${code === 'EADDRINUSE' ? 'the port is already in use (choose another with --port)' : String(error)}\n`);
    // The relay's, the store's and the cluster's connections (its Socket.IO adapter's to Redis
    // among them) would keep the process alive, failed, for ever.
    closing();
    await relay.close();
    return 1;
  }

  return new Promise<number>((done) => {
    const stop = (signal: string) => {
      log.info('stopping', { signal });
      closing();
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

/**
 * The process is stopping. A cluster node closed just after it started can cut short the
 * Socket.IO Redis adapter's SUBSCRIBE, whose promise the adapter leaves unhandled (a
 * DisconnectsClientError): that must not crash the stop. Any other rejection still does.
 */
let stopping = false;
function closing(): void {
  if (stopping) return;
  stopping = true;
  process.on('unhandledRejection', (reason) => {
    if (reason instanceof Error && reason.constructor.name === 'DisconnectsClientError') return;
    throw reason;
  });
}

process.exitCode = await main();
