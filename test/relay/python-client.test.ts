// A client in another language, written from relay/PROTOCOL.md alone
// (test/relay/python/parley_client.py), against a real relay and a TypeScript client.
// Needs /usr/bin/python3 with python3-socketio, python3-websocket and python3-cryptography.
import { describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createPrivateKey, createHmac } from 'node:crypto';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { eventually, newMessageId, useRelay } from '../support/relay.ts';
import { authStatement, base32, identityFromKeys, kaStatement, signWith, userIdOf, verifySignature } from '../../relay/identity.ts';

const PYTHON = '/usr/bin/python3';
const SCRIPT = resolve(import.meta.dirname, 'python/parley_client.py');
/** The Python client gives up on its own after this; the test waits a little longer. */
const CHILD_TIMEOUT_S = 20;

type Line = Record<string, unknown> & { event: string };

/** A running parley_client.py: its JSON lines as they arrive, and its exit. */
class PythonClient {
  readonly lines: Line[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<number | null>;
  readonly child: ChildProcess;

  constructor(args: string[]) {
    this.child = spawn(PYTHON, [SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PYTHONUNBUFFERED: '1' } });
    this.exited = new Promise((done) => this.child.once('exit', (code) => done(code)));
    if (!this.child.stdout || !this.child.stderr) throw new Error('no pipes to the child');
    createInterface({ input: this.child.stdout }).on('line', (text) => {
      try {
        this.lines.push(JSON.parse(text) as Line);
      } catch {
        this.stderr.push(`(stdout, not JSON) ${text}`);
      }
    });
    createInterface({ input: this.child.stderr }).on('line', (text) => this.stderr.push(text));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The first line that satisfies `match`, waiting for it. */
  line(match: (l: Line) => boolean, what: string, timeoutMs = (CHILD_TIMEOUT_S + 2) * 1000): Promise<Line> {
    return eventually(() => this.lines.find(match) ?? (this.running ? undefined : this.dead(what)), what, timeoutMs);
  }

  private dead(what: string): never {
    throw new Error(`python client exited before ${what}:\n${this.transcript()}`);
  }

  transcript(): string {
    return [...this.lines.map((l) => JSON.stringify(l)), ...this.stderr].join('\n');
  }

  /** Kills it if it still runs. */
  async close(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

const scope = useRelay();

const pkcs8 = (prefix: string, seedHex: string) =>
  createPrivateKey({ key: Buffer.concat([Buffer.from(prefix, 'hex'), Buffer.from(seedHex, 'hex')]), format: 'der', type: 'pkcs8' });

describe('a Python client written from PROTOCOL.md', () => {
  it('computes the test vector of section 4.4 exactly as the relay does', async () => {
    const python = scope.track(new PythonClient(['vector']));
    const line = await python.line((l) => l.event === 'vector', 'the vector');
    expect(await python.exited).toBe(0);

    const identity = identityFromKeys(
      pkcs8('302e020100300506032b657004220420', String(line.idSeed)), // Ed25519 PKCS#8 prefix
      pkcs8('302e020100300506032b656e04220420', String(line.kaSeed)), // X25519 PKCS#8 prefix
    );
    expect(line).toMatchObject({ idKey: identity.idKey, kaKey: identity.kaKey, kaSig: identity.kaSig, userId: identity.userId });
    expect(identity.userId).toBe('eh7ddx5bksrgcytl7bkai36se4nxx3kl'); // as printed in PROTOCOL.md

    const relayId = base32(Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex'));
    const head = Buffer.alloc(24);
    head.writeBigUInt64BE(1_700_000_000_000n);
    Buffer.from('101112131415161718191a1b1c1d1e1f', 'hex').copy(head, 8);
    const challenge = Buffer.concat([head, createHmac('sha256', Buffer.alloc(32)).update(head).digest().subarray(0, 16)]).toString('base64url');
    expect(line).toMatchObject({ relayId, challenge });
    const statement = authStatement(relayId, challenge, identity.idKey, identity.kaKey);
    expect(line.authStatement).toBe(statement.toString('utf8'));
    expect(line.sig).toBe(signWith(identity, statement));
  });

  it('joins a real relay, exchanges messages with a TypeScript client, and learns of the delivery', async () => {
    const started = Date.now();
    const relay = await scope.start();
    const ts = await scope.join({ name: 'TypeScript' });
    const body = `ciphertext from python ${newMessageId()}`;
    const python = scope.track(new PythonClient([
      'chat', '--url', relay.url, '--name', 'Python', '--to', ts.id, '--body', body,
      '--expect', '1', '--read', '--receipt', 'read', '--timeout', String(CHILD_TIMEOUT_S),
    ]));

    // Admitted, under the id the relay derives from its key, exactly as the TS side computes it.
    const hello = await python.line((l) => l.event === 'hello', 'hello');
    expect(hello).toMatchObject({ protocol: 1, relayId: relay.relay.relayId, name: 'test relay', accessCode: false });
    const me = await python.line((l) => l.event === 'identity', 'its identity');
    const pyId = String(me.userId);
    expect(pyId).toBe(userIdOf(String(me.idKey)));
    expect(verifySignature(String(me.idKey), kaStatement(String(me.kaKey)), String(me.kaSig))).toBe(true);
    await python.line((l) => l.event === 'connected', 'admission');
    const entry = await ts.request('directory:get', { ids: [pyId] });
    expect(entry).toMatchObject({ ok: true, value: { users: [{ id: pyId, name: 'Python', idKey: me.idKey, kaKey: me.kaKey, kaSig: me.kaSig, online: true }] } });
    expect(await ts.watch(pyId)).toMatchObject([{ id: pyId, online: true }]);
    // It watched the people it found in the directory (the TS client).
    expect(await python.line((l) => l.event === 'watching', 'its presence:watch')).toMatchObject({ ids: [ts.id], online: [ts.id] });
    // Someone new joins: the relay's directory:changed hint makes it fetch the change and watch them.
    const late = await scope.join({ name: 'Latecomer' });
    const changes = await python.line((l) => l.event === 'changes' && (l.users as { id: string }[]).some((u) => u.id === late.id), 'the latecomer, through directory:changes');
    expect(changes.users).toContainEqual({ id: late.id, name: 'Latecomer', online: true });
    await python.line((l) => l.event === 'watching' && (l.ids as string[]).includes(late.id), 'a watch on the latecomer');
    // It checked the directory entries itself (id = hash of idKey, kaSig valid).
    const self = await python.line((l) => l.event === 'self', 'its own directory entry');
    expect(self).toMatchObject({ genuine: true, matches: true });

    // Python -> TS: right body, right sender, and a seq; the TS client was connected and took
    // it at once, so the answer itself carries the delivery (PROTOCOL.md 6.2).
    const sent = await python.line((l) => l.event === 'sent', 'its send acknowledged');
    expect(sent).toMatchObject({ to: ts.id, seq: expect.any(Number), deliveredAt: expect.any(Number) });
    const got = await eventually(() => ts.messages().find((m) => m.id === sent.id), 'the python message at the TS client');
    expect(got).toMatchObject({ from: pyId, body, seq: sent.seq });
    // A read receipt envelope, applied to the message it names (the child waits for it).
    expect(await ts.request('message:read', { peer: pyId, ids: [String(sent.id)] })).toEqual({ ok: true, value: null });
    const read = await python.line((l) => l.event === 'receipt' && l.state === 'read', 'the read receipt');
    expect(read).toMatchObject({ from: ts.id, applied: [sent.id] });

    // TS -> Python: the same, the other way round.
    const replyId = newMessageId();
    expect(await ts.send(pyId, 'hello from TypeScript', replyId)).toMatchObject({ ok: true, value: { deliveredAt: expect.any(Number) } });
    const reply = await python.line((l) => l.event === 'message' && l.id === replyId, 'the TS message at the python client');
    expect(reply).toMatchObject({ from: ts.id, body: 'hello from TypeScript', duplicate: false });
    // Its message:read becomes a read receipt at the TS client.
    await eventually(() => ts.receipts().find((r) => r.state === 'read' && r.ids.includes(replyId) && r.from === pyId), 'read receipt at the TS client');

    // The child exits by itself once its goals are met.
    expect(await python.exited, python.transcript()).toBe(0);
    expect(python.lines.some((l) => l.event === 'done')).toBe(true);
    expect(python.lines.filter((l) => l.event === 'connect_error' || l.event === 'failed')).toEqual([]);
    await eventually(() => ts.presence.some((u) => u.id === pyId && !u.online), 'the python client announced offline');
    expect(Date.now() - started).toBeLessThan(CHILD_TIMEOUT_S * 1000);
  });

  it('sends several messages in one message:send-many, which arrive in order, each answered', async () => {
    const relay = await scope.start();
    const ts = await scope.join({ name: 'TypeScript' });
    const python = scope.track(new PythonClient(['send', '--url', relay.url, '--to', ts.id, '--body', 'batch', '--count', '3', '--receipt', 'delivered', '--timeout', String(CHILD_TIMEOUT_S)]));
    expect(await python.exited, python.transcript()).toBe(0);
    const sent = python.lines.filter((l) => l.event === 'sent');
    expect(sent.map((l) => [l.attempts, l.via])).toEqual(Array(3).fill([1, 'message:send-many']));
    expect(sent.map((l) => l.seq)).toEqual([...sent.map((l) => l.seq)].sort((x, y) => Number(x) - Number(y)));
    await eventually(() => ts.messages().length === 3, 'the three messages');
    expect(ts.messages().map((m) => [m.id, m.body])).toEqual(sent.map((l, i) => [l.id, `batch #${i + 1}`]));
  });

  it('reports a refused handshake with the relay error code', async () => {
    const relay = await scope.start({ accessCode: 'correct horse' });
    const python = scope.track(new PythonClient(['receive', '--url', relay.url, '--access-code', 'wrong horse', '--timeout', '10']));
    const failed = await python.line((l) => l.event === 'failed', 'the refusal');
    expect(failed).toMatchObject({ code: 'E_ACCESS_CODE' });
    expect(await python.exited).toBe(1);
  });
});
