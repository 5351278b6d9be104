// Nothing lost, nothing twice, order kept: three people talking while their relay (a real
// headless relay process) is killed with SIGKILL three times.
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { eventually, tempDir } from '../support/relay.ts';
import { freePort, startCliRelay, type CliRelay } from '../support/cli.ts';
import { conversation, knows, must, online, startCore, type TestCore } from '../support/messenger.ts';
import { readDb } from '../support/db.ts';

const cores: TestCore[] = [];
let relay: CliRelay | undefined;
afterEach(async () => {
  for (const c of cores.splice(0)) await c.close();
  relay?.child.kill('SIGKILL');
});

describe('relay killed mid-stream', () => {
  it('loses, duplicates and reorders nothing across three SIGKILLs, and identities never split', async () => {
    const data = tempDir();
    const port = await freePort();
    const args = ['--data', data.path, '--port', String(port), '--max-connections', '100'];
    relay = await startCliRelay(args);
    const people = await Promise.all(['Ann', 'Ben', 'Cat'].map((name) => startCore({ name })));
    cores.push(...people);
    for (const p of people) must(await p.messenger.handlers['relay:join']({ address: relay.url }));
    await Promise.all(people.map(online));
    for (const a of people) for (const b of people) if (a !== b) await knows(a, b.id);

    const perPair = 25;
    const sending = (async () => {
      for (let i = 0; i < perPair; i++) {
        for (const from of people) {
          for (const to of people) {
            if (from !== to) must(await from.messenger.handlers['message:send']({ peer: to.id, text: `${from.id.slice(0, 4)}>${to.id.slice(0, 4)} #${i}` }));
          }
        }
        await new Promise((r) => setTimeout(r, 15));
      }
    })();

    for (let kill = 0; kill < 3; kill++) {
      await new Promise((r) => setTimeout(r, 120 + Math.random() * 200));
      relay.child.kill('SIGKILL');
      await relay.exited;
      await new Promise((r) => setTimeout(r, 200));
      relay = await startCliRelay(args);
    }
    await sending;

    for (const to of people) {
      for (const from of people) {
        if (from === to) continue;
        const expected = Array.from({ length: perPair }, (_, i) => `${from.id.slice(0, 4)}>${to.id.slice(0, 4)} #${i}`);
        await eventually(async () => (await conversation(to, from.id)).filter((m) => m.direction === 'in').length >= perPair, `${perPair} messages to ${to.id}`, 30_000);
        const received = (await conversation(to, from.id)).filter((m) => m.direction === 'in').map((m) => m.text);
        expect(received).toEqual(expected);
      }
    }
    for (const from of people) {
      for (const to of people) {
        if (from === to) continue;
        await eventually(async () => (await conversation(from, to.id)).filter((m) => m.direction === 'out').every((m) => m.state === 'delivered'), 'every message delivered', 30_000);
      }
    }

    readDb(join(data.path, 'relay.db'), (db) => {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      expect((db.prepare('SELECT count(*) AS n FROM users').get() as { n: number }).n).toBe(3);
    });
  }, 90_000);
});
