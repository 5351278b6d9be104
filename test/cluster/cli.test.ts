// A cluster node (`npm run relay -- --redis …`) that cannot start says why and exits, as a
// single relay does, instead of hanging on: systemd's Restart=on-failure and a container's
// health rely on the exit.
import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { useRedis } from './support/redis.ts';
import { runCli } from '../support/cli.ts';

const redis = useRedis();
const running: ReturnType<typeof runCli>[] = [];
const held: Server[] = [];
afterEach(() => {
  for (const run of running.splice(0)) run.child.kill('SIGKILL');
  for (const server of held.splice(0)) server.close();
});

function run(args: string[]): ReturnType<typeof runCli> {
  const started = runCli(args);
  running.push(started);
  return started;
}

describe('a cluster node that cannot start', () => {
  it('exits 1 when its port is taken', async () => {
    const holder = createServer();
    held.push(holder);
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const node = run(['--redis', redis.url, '--host', '127.0.0.1', '--port', String((holder.address() as AddressInfo).port)]);
    expect(await node.exited).toBe(1);
    expect(node.output()).toContain('the port is already in use');
  });

  it('exits 2 when Redis refuses the login in its URL, naming the reason and never the password', async () => {
    const url = redis.url.replace('redis://', 'redis://nobody:s3cret-pw@');
    const node = run(['--redis', url, '--host', '127.0.0.1', '--port', '0']);
    expect(await node.exited).toBe(2);
    expect(node.output()).toMatch(/--redis redis:\/\/nobody:\*\*\*@127\.0\.0\.1:\d+\/?: redis refused the login: WRONGPASS/);
    expect(node.output()).not.toContain('s3cret-pw');
  });
});
