// A relay that admits nobody, for tests of what a client makes of a hostile relay's refusals.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { HELLO_PATH, PROTOCOL_VERSION, type Hello } from '../../relay/protocol.ts';

/**
 * A relay that admits nobody (PROTOCOL.md 2.1 and 5): GET /parley/hello answers a valid
 * Hello, and every Socket.IO CONNECT is refused with `refusal`, which the test may change.
 */
export async function refusingRelay() {
  const refusal = { code: '<img src=x onerror="window.__pwned=1">', message: '<svg onload=window.__pwned=1>' };
  /** The codes of the refusals sent, and the handshakes they refused, in order. */
  const refused: string[] = [];
  const auths: unknown[] = [];
  const hello = (): Hello => ({
    protocol: PROTOCOL_VERSION,
    relayId: 'h'.repeat(26),
    name: 'Refusing relay',
    accessCode: false,
    challenge: randomBytes(40).toString('base64url'),
    challengeTtlMs: 60_000,
  });
  const http = createServer((req, res) => {
    if (req.method === 'GET' && req.url?.split('?')[0] === HELLO_PATH) res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(hello()));
    else res.writeHead(404).end();
  });
  const io = new Server(http, { serveClient: false, transports: ['websocket'] });
  io.use((socket, next) => {
    refused.push(refusal.code);
    auths.push(socket.handshake.auth);
    next(Object.assign(new Error(refusal.code), { data: { ...refusal } }));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(http.address() as AddressInfo).port}`,
    refusal,
    refused,
    auths,
    close: () => io.close(),
  };
}
