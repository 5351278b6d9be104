// mDNS discovery for real, inside a private network namespace (unshare --net) whose only
// interface is loopback with multicast on: no packet leaves the machine.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { relayFromService } from '../../main/core/discovery.ts';
import { CLI } from '../support/cli.ts';

const probe = resolve(import.meta.dirname, 'mdns/probe.ts');
const busyPort = resolve(import.meta.dirname, 'mdns/busy-port.ts');
const expiry = resolve(import.meta.dirname, 'mdns/expiry.ts');
const flags = CLI.slice(0, 2);

describe('LAN discovery', () => {
  it('finds hosted relays with their names (however long, even the same), addresses and code requirement, and sees them leave', () => {
    const script = `ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && exec "${process.execPath}" ${flags.join(' ')} "${probe}"`;
    const run = spawnSync('unshare', ['--net', 'sh', '-c', script], { encoding: 'utf8', timeout: 30_000 });
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as { started?: { ok: boolean; value: { port: number } }; phase?: string; relays?: { name: string; address: string; accessCode: boolean; protocol: number; relayId: string }[] });
    const started = lines.flatMap((l) => (l.started ? [l.started] : []));
    expect(started.map((s) => s.ok)).toEqual([true, true]);
    const seen = lines.find((l) => l.phase === 'up' && l.relays?.length === 2)?.relays ?? [];
    const name = "Д-р. Е. Смирнова-Васильевна <b>Lab</b>'s Parley";
    expect(Buffer.byteLength(name)).toBeGreaterThan(63);
    expect(seen.map((r) => [r.name, r.address, r.accessCode, r.protocol]).sort()).toEqual(started.map((s) => [name, `127.0.0.1:${s.value.port}`, true, 1]).sort());
    for (const relay of seen) expect(relay.relayId).toMatch(/^[a-z2-7]{26}$/);
    expect(seen[0]?.relayId).not.toBe(seen[1]?.relayId);
    expect(lines.at(-1)).toMatchObject({ phase: 'down', relays: [] });
  });

  it('drops a relay that stops answering (killed, so no goodbye) but never a live one, even with the clock stepped back, and follows one back on another port', () => {
    const script = `ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && exec "${process.execPath}" ${flags.join(' ')} "${expiry}"`;
    const run = spawnSync('unshare', ['--net', 'sh', '-c', script], { encoding: 'utf8', timeout: 40_000 });
    expect(run.status, run.stderr).toBe(0);
    const [up, gone, stayed, moved] = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const [dead, live] = ['aaaaaaaaaaaaaaaaaaaaaaaaaa@127.0.0.1:41001', 'bbbbbbbbbbbbbbbbbbbbbbbbbb@127.0.0.1:41002'];
    expect(up).toMatchObject({ bothUp: expect.any(Number), listed: [dead, live] });
    // Re-queried every 300 ms and dropped after 5 queries unanswered: gone 1.5 to 1.8 s after its last answer.
    expect(gone).toMatchObject({ killedGoneAfter: expect.any(Number), listed: [live] });
    expect(gone?.killedGoneAfter).toBeGreaterThanOrEqual(1_200);
    expect(gone?.killedGoneAfter).toBeLessThan(5_000);
    expect(stayed).toEqual({ liveLeft: false, listed: [live] });
    // Back on another port (a restart after a crash): listed there at once, by a browser with the production timing.
    expect(moved).toMatchObject({ newPortAfter: expect.any(Number), slowListed: [dead, 'bbbbbbbbbbbbbbbbbbbbbbbbbb@127.0.0.1:41003'] });
  }, 45_000);

  it('reports a port held by another responder as an error, without taking the app down', () => {
    const run = spawnSync('unshare', ['--net', 'sh', '-c', `ip link set lo up && exec "${process.execPath}" ${flags.join(' ')} "${busyPort}"`], { encoding: 'utf8', timeout: 30_000 });
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as { error?: string; done?: boolean });
    // Told once, though every query fails the same way.
    expect(lines.filter((l) => l.error).map((l) => l.error)).toEqual(['bind EADDRINUSE 0.0.0.0:5353']);
    expect(lines.at(-1)).toEqual({ done: true });
  });

  it('ignores malformed advertisements', () => {
    const base = { name: 'x', port: 47800, addresses: ['192.168.1.5'], referer: undefined };
    expect(relayFromService({ ...base, txt: { id: 'abcdefghijklmnopqrstuvwxyz', v: '1', code: '0' } })).toMatchObject({ name: 'x', address: '192.168.1.5:47800', accessCode: false });
    // The name is the TXT record's when there is one (an older Parley's advertisement has none).
    expect(relayFromService({ ...base, txt: { id: 'abcdefghijklmnopqrstuvwxyz', v: '1', code: '0', n: 'Dr. Who\'s Parley' } })?.name).toBe('Dr. Who\'s Parley');
    expect(relayFromService({ ...base, txt: { id: 'not an id', v: '1', code: '0' } })).toBeNull();
    expect(relayFromService({ ...base, txt: { id: 'abcdefghijklmnopqrstuvwxyz', v: 'x', code: '0' } })).toBeNull();
    expect(relayFromService({ ...base, port: 0, txt: { id: 'abcdefghijklmnopqrstuvwxyz', v: '1', code: '1' } })).toBeNull();
    expect(relayFromService({ ...base, addresses: [], txt: { id: 'abcdefghijklmnopqrstuvwxyz', v: '1', code: '1' } })).toBeNull();
  });
});
