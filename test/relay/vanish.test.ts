// A peer that vanishes without a FIN (cable pulled, laptop lid closed) is noticed by the
// heartbeat, and everyone sees them go offline.
import { describe, expect, it } from 'vitest';
import { connectClient, eventually, useRelay } from '../support/relay.ts';
import { startProxy } from '../support/proxy.ts';

const scope = useRelay();

describe('a vanished peer', () => {
  it('goes offline for others within ping interval + timeout', async () => {
    const relay = await scope.start({ pingIntervalMs: 300, pingTimeoutMs: 300 });
    const proxy = scope.track(await startProxy(relay.port));
    const watcher = await scope.join({ name: 'Watcher' });
    const laptop = scope.track(await connectClient(proxy.url, { name: 'Laptop' }));
    await eventually(async () => (await watcher.watch(laptop.id))[0]?.online === true, 'laptop online');

    const cut = Date.now();
    proxy.blackhole();
    await eventually(() => watcher.presence.some((u) => u.id === laptop.id && !u.online), 'laptop offline', 5000);
    expect(Date.now() - cut).toBeLessThan(300 + 300 + 1000);
  });

  it('is noticed within about 20 s with the default heartbeat', async () => {
    const relay = await scope.start();
    const { WebSocket } = await import('ws');
    const ws = new WebSocket(`ws://127.0.0.1:${relay.port}/socket.io/?EIO=4&transport=websocket`);
    const open = await new Promise<string>((resolve, reject) => {
      ws.once('message', (data: Buffer) => resolve(data.toString()));
      ws.once('error', reject);
    });
    ws.close();
    const handshake = JSON.parse(open.slice(1)) as { pingInterval: number; pingTimeout: number; maxPayload: number };
    expect(handshake.pingInterval + handshake.pingTimeout).toBeLessThanOrEqual(20_000);
    expect(handshake.maxPayload).toBe(64 * 1024);
  });
});
