// A peer that vanishes without a FIN (cable pulled, laptop lid closed) is noticed by the
// heartbeat, and everyone sees them go offline.
import { afterEach, describe, expect, it } from 'vitest';
import { connectClient, eventually, startRelay, type TestClient, type TestRelay } from '../support/relay.ts';
import { startProxy, type Proxy } from '../support/proxy.ts';

let relay: TestRelay | undefined;
let proxy: Proxy | undefined;
const clients: TestClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await proxy?.close();
  await relay?.stop();
});

describe('a vanished peer', () => {
  it('goes offline for others within ping interval + timeout', async () => {
    relay = await startRelay({ pingIntervalMs: 300, pingTimeoutMs: 300 });
    proxy = await startProxy(relay.port);
    const watcher = await connectClient(relay.url, { name: 'Watcher' });
    const laptop = await connectClient(proxy.url, { name: 'Laptop' });
    clients.push(watcher, laptop);
    await eventually(async () => (await watcher.watch(laptop.id))[0]?.online === true, 'laptop online');

    const cut = Date.now();
    proxy.blackhole();
    await eventually(() => watcher.presence.some((u) => u.id === laptop.id && !u.online), 'laptop offline', 5000);
    expect(Date.now() - cut).toBeLessThan(300 + 300 + 1000);
  });

  it('is noticed within about 20 s with the default heartbeat', async () => {
    relay = await startRelay();
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
