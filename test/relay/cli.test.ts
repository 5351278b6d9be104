import { afterEach, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { connectClient, eventually, newMessageId, tempDir, type TestClient } from '../support/relay.ts';
import { runCli, startCliRelay, type CliRelay } from '../support/cli.ts';
import { upgradeAnswer } from '../support/raw-ws.ts';
import { generateIdentity } from '../../relay/identity.ts';
import { joinAddresses } from '../../relay/addresses.ts';
import { relayBaseUrl } from '../../relay/handshake.ts';

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
      // Not 0, a random port: a blank or non-decimal port is a mistake.
      [['--port', ' '], /--port: .*decimal/],
      [['--port', ''], /--port: .*decimal/],
      [['--port', '0x1f90'], /--port: .*decimal/],
      [['--frobnicate'], /Unknown option '--frobnicate'/],
      [['--durability', 'sometimes'], /--durability: .*normal.*full/],
      [['--allowed-origin', 'not a url'], /--allowed-origin/],
      // No browser sends an Origin with a path, query or fragment, or for file: and javascript: pages.
      [['--allowed-origin', 'https://app.example.com/chat'], /--allowed-origin: expected an origin/],
      [['--allowed-origin', 'https://app.example.com/?room=1'], /--allowed-origin: expected an origin/],
      [['--allowed-origin', 'https://app.example.com#top'], /--allowed-origin: expected an origin/],
      [['--allowed-origin', 'file:///srv/parley/index.html'], /--allowed-origin: expected an origin/],
      [['--allowed-origin', 'javascript:alert(1)'], /--allowed-origin: expected an origin/],
      [['--mailbox-messages', '0'], /--mailbox-messages: .*>=1/],
      [['--mailbox-mb', 'lots'], /--mailbox-mb: .*number/],
      // A proxy is named by its IP address: a host name or a range would never match a peer.
      [['--trusted-proxy', 'nginx'], /--trusted-proxy: expected the IP address of a proxy/],
      [['--trusted-proxy', '10.0.0.0/8'], /--trusted-proxy: expected the IP address of a proxy/],
      [['--trusted-proxy', '10.0.0.2,proxy.lan'], /--trusted-proxy: expected the IP address of a proxy/],
      [['--allowed-origin', 'https://a.example.com,https://b.example.com/chat'], /--allowed-origin: expected an origin/],
    ] as const) {
      const run = runCli([...args]);
      expect(await run.exited).toBe(2);
      expect(run.output()).toMatch(message);
    }
  });

  it('treats an empty PARLEY_* variable (PARLEY_PORT= in an env file) as unset, so every default applies', async () => {
    const help = runCli(['--help']);
    await help.exited;
    const variables = [...new Set(help.output().match(/PARLEY_[A-Z_]+/g))];
    expect(variables).toContain('PARLEY_PORT');
    const cwd = tempDir();
    const run = runCli([], Object.fromEntries(variables.map((v) => [v, ''])), cwd.path);
    try {
      // The default port on every interface (or a note that another relay holds it), not a random port or an error.
      await eventually(() => / on 0\.0\.0\.0:47800\b/.test(run.output()) || run.child.exitCode !== null, 'the relay to start or stop', 15_000);
      expect(run.output()).toMatch(/ on 0\.0\.0\.0:47800\b/);
      expect(run.output()).not.toMatch(/parley relay: --/);
      expect(existsSync(join(cwd.path, 'relay-data', 'relay.db'))).toBe(true);
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
      cwd.remove();
    }
  });

  it('admits browsers from an allowed origin however the operator wrote it (case, default port, trailing slash)', async () => {
    const data = tempDir();
    // The flag repeated, and comma-separated, as the variable is.
    const relay = await startCliRelay(['--data', data.path, '--allowed-origin', 'HTTPS://App.Example.com:443/', '--allowed-origin', 'https://a.example.com, https://b.example.com'], { PARLEY_ALLOWED_ORIGINS: 'ignored: the flag wins' });
    running.push(relay);
    expect(await upgradeAnswer(relay.port, { origin: 'https://app.example.com' })).toEqual({ status: 101 });
    expect(await upgradeAnswer(relay.port, { origin: 'https://b.example.com' })).toEqual({ status: 101 });
    expect(await upgradeAnswer(relay.port, { origin: 'https://other.example.com' })).toMatchObject({ status: 403, code: 'E_ORIGIN' });
    relay.child.kill('SIGTERM');
    await relay.exited;

    const fromEnv = await startCliRelay(['--data', data.path], { PARLEY_ALLOWED_ORIGINS: 'http://LOCALHOST:5173/, https://app.example.com:8443' });
    running.push(fromEnv);
    expect(await upgradeAnswer(fromEnv.port, { origin: 'http://localhost:5173' })).toEqual({ status: 101 });
    expect(await upgradeAnswer(fromEnv.port, { origin: 'https://app.example.com:8443' })).toEqual({ status: 101 });
    expect(await upgradeAnswer(fromEnv.port, { origin: 'https://app.example.com' })).toMatchObject({ status: 403, code: 'E_ORIGIN' });
  });

  it('names an IPv6 address to join with in brackets, as the app takes it', () => {
    for (const host of ['2001:db8::5', '::1']) {
      const [address] = joinAddresses(host, 47800);
      expect(address).toBe(`[${host}]:47800`);
      expect(relayBaseUrl(address ?? '').port).toBe('47800');
    }
    expect(joinAddresses('192.168.1.20', 47800)).toEqual(['192.168.1.20:47800']);
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

  it('holds as many messages per recipient as --mailbox-messages says, then answers E_QUEUE_FULL', async () => {
    const data = tempDir();
    const relay = await startCliRelay(['--data', data.path, '--mailbox-messages', '3']);
    running.push(relay);
    const bob = generateIdentity();
    (await connectClient(relay.url, { identity: bob })).close();
    const alice = await connectClient(relay.url);
    clients.push(alice);
    const answers = [];
    for (const text of ['one', 'two', 'three', 'four']) answers.push(await alice.send(bob.userId, text));
    expect(answers.map((a) => (a.ok ? 'ok' : a.error.code))).toEqual(['ok', 'ok', 'ok', 'E_QUEUE_FULL']);
    // Once Bob took his mail, there is room again.
    const back = await connectClient(relay.url, { identity: bob });
    clients.push(back);
    await eventually(() => back.messages().length === 3, 'the three waiting messages');
    expect(back.messages().map((m) => m.body)).toEqual(['one', 'two', 'three']);
    back.close();
    await eventually(async () => (await alice.send(bob.userId, 'four')).ok, 'room for the fourth once the three were acknowledged');
  });

  it('exits at once on SIGTERM while a recipient sits on a delivery it has not acknowledged, and keeps that message', async () => {
    const data = tempDir();
    const relay = await startCliRelay(['--data', data.path]);
    running.push(relay);
    const bob = generateIdentity();
    // Bob takes the first batch, then holds the next one unanswered.
    let batches = 0;
    const holding = await connectClient(relay.url, { identity: bob, onDeliver: () => (++batches === 1 ? { ok: true as const } : new Promise<never>(() => undefined)) });
    clients.push(holding);
    const alice = await connectClient(relay.url);
    clients.push(alice);
    expect((await alice.send(bob.userId, 'taken')).ok).toBe(true);
    await eventually(() => holding.messages().length === 1, 'the first message');
    expect((await alice.send(bob.userId, 'held')).ok).toBe(true);
    await eventually(() => holding.messages().length === 2, 'the second message, left unacknowledged');

    const stopping = Date.now();
    relay.child.kill('SIGTERM');
    expect(await relay.exited).toBe(0);
    // Not after the delivery's 15 s ack timeout.
    expect(Date.now() - stopping).toBeLessThan(5_000);

    // After a restart, Bob gets the message he never acknowledged, and only that one.
    const again = await startCliRelay(['--data', data.path]);
    running.push(again);
    const back = await connectClient(again.url, { identity: bob });
    clients.push(back);
    await eventually(() => back.messages().length === 1, 'the unacknowledged message again');
    await new Promise((r) => setTimeout(r, 200));
    expect(back.messages().map((m) => m.body)).toEqual(['held']);
  });

  it('stops gracefully on SIGTERM mid-stream (B2): admits nobody new, answers every send it read, loses and repeats nothing', async () => {
    const data = tempDir();
    const relay = await startCliRelay(['--data', data.path]);
    running.push(relay);
    const bob = generateIdentity();
    (await connectClient(relay.url, { identity: bob })).close();
    const senders = await Promise.all([0, 1, 2].map(() => connectClient(relay.url)));
    clients.push(...senders);

    // Per sender, in order: each send's id and what came of it (ok, an error code, or no answer).
    const sent = new Map<string, { id: string; outcome: string }[]>(senders.map((s) => [s.id, []]));
    const acked = () => [...sent.values()].flat().filter((s) => s.outcome === 'ok');
    const streams = senders.map(async (sender) => {
      const mine = sent.get(sender.id) ?? [];
      for (;;) {
        const id = newMessageId();
        const result = await sender.send(bob.userId, `from ${sender.id}`, id, Date.now()).catch(() => undefined);
        mine.push({ id, outcome: result === undefined ? 'no answer' : result.ok ? 'ok' : result.error.code });
        if (result === undefined || !sender.socket.connected) return;
      }
    });
    await eventually(() => acked().length >= 60, 'a stream of acknowledged sends');
    const stopping = Date.now();
    relay.child.kill('SIGTERM');
    // Someone joining while it stops is not admitted.
    const late = await connectClient(relay.url).then((c) => (c.close(), 'admitted'), (e: unknown) => String(e));
    expect(await relay.exited).toBe(0);
    expect(Date.now() - stopping).toBeLessThan(5_000);
    await Promise.all(streams);
    expect(late).not.toBe('admitted');
    const log = relay.output();
    expect(log).toMatch(/relay stopped/);
    expect(log.slice(log.indexOf('stopping')).match(/INFO {2}connected user=/g)).toBeNull();

    // Every send the relay read was answered ok, or E_UNAVAILABLE once it was stopping; only a
    // sender's last send, written as the connection closed, may have had no answer.
    for (const mine of sent.values()) {
      const outcomes = mine.map((s) => s.outcome);
      const firstRefusal = outcomes.findIndex((o) => o !== 'ok');
      expect(outcomes.slice(0, firstRefusal < 0 ? undefined : firstRefusal).every((o) => o === 'ok')).toBe(true);
      if (firstRefusal >= 0) {
        const rest = outcomes.slice(firstRefusal);
        expect(rest.slice(0, -1).every((o) => o === 'E_UNAVAILABLE'), rest.join()).toBe(true);
        expect(['E_UNAVAILABLE', 'no answer']).toContain(rest.at(-1));
      }
    }

    // After a restart on the same folder: every acknowledged message arrives once, in each
    // sender's order, and nothing that was refused or unanswered was kept.
    const again = await startCliRelay(['--data', data.path]);
    running.push(again);
    const bobClient = await connectClient(again.url, { identity: bob });
    clients.push(bobClient);
    await eventually(() => acked().every((s) => bobClient.messages().some((m) => m.id === s.id)), `all ${acked().length} acknowledged messages`, 10_000);
    const got = bobClient.messages().map((m) => m.id);
    expect(new Set(got).size).toBe(got.length);
    expect(got.length).toBe(acked().length);
    for (const mine of sent.values()) {
      const order = mine.filter((s) => s.outcome === 'ok').map((s) => s.id);
      expect(got.filter((id) => order.includes(id))).toEqual(order);
    }
  });
});
