// Relays that follow a script instead of relay/, for tests of what a client makes of a relay
// that refuses oddly or sends what no Parley relay would (PROTOCOL.md: a client trusts nothing
// a relay sends).
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, type Socket } from 'socket.io';
import { HELLO_PATH, PROTOCOL_VERSION, type Hello } from '../../relay/protocol.ts';

/** GET /parley/hello answers a valid Hello; Socket.IO listens beside it on loopback. */
async function scriptedServer(name: string) {
  const hello = (): Hello => ({
    protocol: PROTOCOL_VERSION,
    relayId: 'h'.repeat(26),
    name,
    accessCode: false,
    challenge: randomBytes(40).toString('base64url'),
    challengeTtlMs: 60_000,
  });
  const http = createServer((req, res) => {
    if (req.method === 'GET' && req.url?.split('?')[0] === HELLO_PATH) res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(hello()));
    else res.writeHead(404).end();
  });
  const io = new Server(http, { serveClient: false, transports: ['websocket'] });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return { io, address: `127.0.0.1:${(http.address() as AddressInfo).port}` };
}

/** A relay that admits nobody: every Socket.IO CONNECT is refused with `refusal`, which the test may change. */
export async function refusingRelay() {
  const refusal = { code: '<img src=x onerror="window.__pwned=1">', message: '<svg onload=window.__pwned=1>' };
  /** The codes of the refusals sent, and the handshakes they refused, in order. */
  const refused: string[] = [];
  const auths: unknown[] = [];
  const { io, address } = await scriptedServer('Refusing relay');
  io.use((socket, next) => {
    refused.push(refusal.code);
    auths.push(socket.handshake.auth);
    next(Object.assign(new Error(refusal.code), { data: { ...refusal } }));
  });
  return { address, refusal, refused, auths, close: () => io.close() };
}

/** A relay that admits anyone without a check and hands each socket to `script`. */
export async function admittingRelay(script: (socket: Socket) => void) {
  const { io, address } = await scriptedServer('Scripted relay');
  io.on('connection', script);
  return { address, close: () => io.close() };
}
