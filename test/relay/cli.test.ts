import { afterEach, describe, expect, it } from 'vitest';
import { connectClient, eventually, newMessageId, tempDir, type TestClient } from '../support/relay.ts';
import { runCli, startCliRelay, type CliRelay } from '../support/cli.ts';
import { generateIdentity } from '../../relay/identity.ts';

const running: CliRelay[] = [];
const clients: TestClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  for (const r of running.splice(0)) r.child.kill('SIGKILL');
});

describe('npm run relay', () => {
  it('explains itself with --help', async () => {
    const run = runCli(['--help']);
    expect(await run.exited).toBe(0);
    expect(run.output()).toMatch(/--access-code <code>.*PARLEY_ACCESS_CODE/);
  });

  it('rejects bad flags and values with a clear error and a non-zero exit', async () => {
    for (const [args, message] of [
      [['--port', 'eighty'], /--port: .*number/],
      [['--frobnicate'], /Unknown option '--frobnicate'/],
      [['--durability', 'sometimes'], /--durability: .*normal.*full/],
      [['--allowed-origin', 'not a url'], /--allowed-origin/],
    ] as const) {
      const run = runCli([...args]);
      expect(await run.exited).toBe(2);
      expect(run.output()).toMatch(message);
    }
  });

  it('takes its settings from the environment, and says how to join', async () => {
    const data = tempDir();
    const relay = await startCliRelay([], { PARLEY_DATA: data.path, PARLEY_ACCESS_CODE: 'letmein', PARLEY_RELAY_NAME: 'Lab' });
    running.push(relay);
    expect(relay.output()).toMatch(/Join from the app with: 127\.0\.0\.1:\d+/);
    expect(relay.output()).toMatch(/access code is required/);
    await expect(connectClient(relay.url)).rejects.toMatchObject({ message: 'E_ACCESS_CODE' });
    const ok = await connectClient(relay.url, { accessCode: 'letmein' });
    clients.push(ok);
    ok.close();
    await eventually(() => /disconnected user=/.test(relay.output()), 'a disconnect log line');
    expect(relay.output()).toMatch(/INFO {2}connected user=/);
    expect(relay.output()).toMatch(/WARN {2}handshake refused .*code=E_ACCESS_CODE/);
  });

  it('loses nothing it acknowledged when stopped with SIGTERM mid-stream', async () => {
    const data = tempDir();
    const relay = await startCliRelay(['--data', data.path]);
    running.push(relay);
    const bob = generateIdentity();
    (await connectClient(relay.url, { identity: bob })).close();
    const senders = await Promise.all([0, 1, 2].map(() => connectClient(relay.url)));
    clients.push(...senders);

    const acked = new Set<string>();
    let stop = false;
    const streams = senders.map(async (sender) => {
      while (!stop) {
        const id = newMessageId();
        const result = await sender.send(bob.userId, `from ${sender.id}`, id, Date.now()).catch(() => undefined);
        if (result?.ok) acked.add(id);
        else if (result === undefined || !sender.socket.connected) return;
      }
    });
    await eventually(() => acked.size >= 60, 'a stream of acknowledged sends');
    relay.child.kill('SIGTERM');
    expect(await relay.exited).toBe(0);
    stop = true; // sends still waiting on the dead relay settle later; none can be acknowledged now
    void Promise.all(streams);
    expect(relay.output()).toMatch(/relay stopped/);

    const again = await startCliRelay(['--data', data.path]);
    running.push(again);
    const bobClient = await connectClient(again.url, { identity: bob });
    clients.push(bobClient);
    await eventually(() => [...acked].every((id) => bobClient.messages().some((m) => m.id === id)), `all ${acked.size} acknowledged messages`, 10_000);
    const ids = bobClient.messages().map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
