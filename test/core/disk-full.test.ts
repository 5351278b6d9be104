// RELIABILITY.md B8 disk-full, on the client (the relay's half is in
// test/relay/storage-faults.test.ts): SQLite's max_page_count makes history.db full, as a
// full disk does. Sending then says so and saves nothing (the window keeps the draft);
// receiving leaves the messages at the relay; once there is room, everything arrives once.
import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { eventually, tempDir, useRelay, type TestRelay } from '../support/relay.ts';
import { conversation, knows, must, online, startCore, type TestCore } from '../support/messenger.ts';

const scope = useRelay();

/** The pages history.db has now: as a cap, any growth fails. */
function pages(dataDir: string): number {
  const db = new Database(join(dataDir, 'history.db'));
  try {
    db.pragma('wal_checkpoint(TRUNCATE)');
    return db.pragma('page_count', { simple: true }) as number;
  } finally {
    db.close();
  }
}

async function start(r: TestRelay, options: Parameters<typeof startCore>[0]): Promise<TestCore> {
  const core = scope.track(await startCore(options));
  must(await core.messenger.handlers['relay:join']({ address: r.url }));
  await online(core);
  return core;
}

async function restart(r: TestRelay, core: TestCore, historyMaxPageCount?: number): Promise<TestCore> {
  await scope.close(core);
  return start(r, { dataDir: core.dataDir, ...(historyMaxPageCount === undefined ? {} : { historyMaxPageCount }) });
}

const filler = (i: number) => `${i} ${'a long line of text to fill the pages '.repeat(200)}`;

describe('a full disk on the client', () => {
  it('refuses to send with a clear error and saves nothing', async () => {
    const r = await scope.start();
    let ann = await start(r, { name: 'Ann', dataDir: tempDir('parley-core-').path });
    const ben = await start(r, { name: 'Ben' });
    await knows(ann, ben.id);
    await scope.close(ann);
    ann = await start(r, { dataDir: ann.dataDir, historyMaxPageCount: pages(ann.dataDir) });

    let refused: { code: string; message: string } | undefined;
    for (let i = 0; i < 50 && !refused; i++) {
      const result = await ann.messenger.handlers['message:send']({ peer: ben.id, text: filler(i) });
      if (!result.ok) refused = result.error;
    }
    expect(refused).toMatchObject({ code: 'E_STORAGE', message: expect.stringMatching(/disk is full/i) });
    // What was saved is sent and delivered; what was refused is nowhere, not half-saved.
    const saved = await conversation(ann, ben.id);
    await eventually(async () => (await conversation(ben, ann.id)).length === saved.length, 'the saved ones delivered', 10_000);
    expect((await conversation(ben, ann.id)).map((m) => m.text)).toEqual(saved.map((m) => m.text));
    expect(saved.every((m) => m.state !== 'failed')).toBe(true);

    // Room again: the same text goes through.
    ann = await restart(r, ann);
    must(await ann.messenger.handlers['message:send']({ peer: ben.id, text: 'after' }));
    await eventually(async () => (await conversation(ben, ann.id)).at(-1)?.text === 'after', 'sent once there is room', 10_000);
  });

  it('leaves incoming messages at the relay until there is room, then takes each once, in order', { timeout: 60_000 }, async () => {
    const r = await scope.start();
    const ann = await start(r, { name: 'Ann' });
    let ben = await start(r, { name: 'Ben', dataDir: tempDir('parley-core-').path });
    await knows(ann, ben.id);
    await knows(ben, ann.id);
    ben = await restart(r, ben, pages(ben.dataDir));

    const texts = Array.from({ length: 20 }, (_, i) => filler(i));
    for (const text of texts) must(await ann.messenger.handlers['message:send']({ peer: ben.id, text }));
    // Accepted by the relay, but Ben cannot store them: not delivered, and Ben keeps running.
    await eventually(async () => (await conversation(ann, ben.id)).every((m) => m.state === 'sent'), 'all accepted by the relay', 10_000);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const got = await conversation(ben, ann.id);
    expect(got.length).toBeLessThan(texts.length);
    expect((await conversation(ann, ben.id)).filter((m) => m.state === 'delivered').length).toBe(got.length);
    expect(must(await ben.messenger.handlers['status:get'](null)).connection.state).toBe('online');

    ben = await restart(r, ben);
    await eventually(async () => (await conversation(ben, ann.id)).length === texts.length, 'everything once there is room', 20_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await conversation(ben, ann.id)).map((m) => m.text)).toEqual(texts);
    await eventually(async () => (await conversation(ann, ben.id)).every((m) => m.state === 'delivered'), 'every message marked delivered', 10_000);
  });
});
