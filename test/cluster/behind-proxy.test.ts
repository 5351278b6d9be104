// Behind a reverse proxy (the usual front of a cluster) every connection comes from the
// proxy's address: the per-address limits must count the client named in X-Forwarded-For,
// and only when the peer is a proxy the operator trusts.
import { describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { io } from 'socket.io-client';
import { useRelay, type ClientSocket } from '../support/relay.ts';
import { createLogger } from '../../relay/log.ts';

const scope = useRelay();

/** Opens a transport (no handshake needed) and says whether the upgrade was admitted. */
const open = (url: string, forwardedFor: string) =>
  new Promise<boolean>((resolve) => {
    const socket: ClientSocket = io(url, { transports: ['websocket'], reconnection: false, forceNew: true, extraHeaders: { 'x-forwarded-for': forwardedFor }, auth: {} });
    scope.track(() => socket.disconnect());
    socket.io.engine.once('open', () => resolve(true));
    socket.once('connect_error', (error) => resolve(!/websocket error/.test(error.message)));
  });

describe('per-address limits behind a reverse proxy', () => {
  it('counts the forwarded client address when the peer is a trusted proxy', async () => {
    const relay = await scope.start({ maxConnectionsPerAddress: 2, trustedProxies: ['127.0.0.1'] });
    expect(await open(relay.url, '198.51.100.7')).toBe(true);
    expect(await open(relay.url, '203.0.113.1, 198.51.100.7')).toBe(true);
    expect(await open(relay.url, '198.51.100.7')).toBe(false); // a third from the same client
    expect(await open(relay.url, '198.51.100.8')).toBe(true); // another client behind the same proxy
    // The proxy's own TCP connections are not capped (anyone else may hold twice the socket
    // cap plus 10, 14): with 16 held open by the proxy, another client still gets through it.
    const held = await Promise.all(Array.from({ length: 16 }, () => new Promise<Socket>((resolve) => {
      const tcp = connect(relay.port, '127.0.0.1', () => resolve(tcp));
    })));
    try {
      expect(await open(relay.url, '198.51.100.9')).toBe(true);
    } finally {
      for (const tcp of held) tcp.destroy();
    }
  });

  it('knows a trusted IPv4 proxy on a relay listening on :: too, where the proxy arrives as ::ffff:127.0.0.1', async () => {
    const lines: string[] = [];
    const relay = await scope.start({ host: '::', maxConnectionsPerAddress: 2, trustedProxies: ['127.0.0.1'], log: createLogger({ write: (line) => lines.push(line) }) });
    expect(await open(relay.url, '198.51.100.1')).toBe(true);
    expect(await open(relay.url, '198.51.100.1')).toBe(true);
    expect(await open(relay.url, '198.51.100.1')).toBe(false); // a third from the same client
    // Counted, refused and logged as the client, not as the proxy.
    expect(lines.filter((line) => line.includes('refused a connection')).map((line) => /address=(\S+)/.exec(line)?.[1])).toEqual(['198.51.100.1']);
  });

  it('ignores X-Forwarded-For from a peer it does not trust', async () => {
    const relay = await scope.start({ maxConnectionsPerAddress: 2 });
    expect(await open(relay.url, '198.51.100.1')).toBe(true);
    expect(await open(relay.url, '198.51.100.2')).toBe(true);
    expect(await open(relay.url, '198.51.100.3')).toBe(false); // all three are 127.0.0.1
  });
});
