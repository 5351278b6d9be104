// Test support: a WebSocket to the relay spoken by hand over the TCP socket of an HTTP
// upgrade, so a test can send any frame, including ones no WebSocket library would produce
// (invalid UTF-8, RSV bits set, Socket.IO binary attachments). It behaves like a polite
// client otherwise: it masks its frames, answers pings and echoes a close frame.
import { request } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { buildAuth, fetchHello } from '../../relay/handshake.ts';
import { generateIdentity, type Identity } from '../../relay/identity.ts';

export const OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

export interface FrameSpec {
  opcode: number;
  payload: Buffer | string;
  fin?: boolean;
  /** RSV1..RSV3 as the three bits 0b100, 0b010, 0b001. */
  rsv?: number;
  /** Clients must mask; false sends the payload in clear. */
  masked?: boolean;
}

/** One client-to-server frame, masked as RFC 6455 requires unless told otherwise. */
export function encodeFrame({ opcode, payload, fin = true, rsv = 0, masked = true }: FrameSpec): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const length = data.length;
  const header = length < 126 ? Buffer.alloc(2) : length < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  const maskBit = masked ? 0x80 : 0;
  header[0] = (fin ? 0x80 : 0) | ((rsv & 0b111) << 4) | (opcode & 0x0f);
  if (length < 126) header[1] = maskBit | length;
  else if (length < 65536) {
    header[1] = maskBit | 126;
    header.writeUInt16BE(length, 2);
  } else {
    header[1] = maskBit | 127;
    header.writeBigUInt64BE(BigInt(length), 2);
  }
  if (!masked) return Buffer.concat([header, data]);
  const mask = randomBytes(4);
  const body = Buffer.alloc(length);
  for (let i = 0; i < length; i++) body[i] = (data[i] as number) ^ (mask[i % 4] as number);
  return Buffer.concat([header, mask, body]);
}

/** The complete frame at the start of `buf`, if it holds one: its bytes, opcode and payload (unmasked). */
export function decodeFrame(buf: Buffer): { bytes: Buffer; opcode: number; payload: Buffer } | undefined {
  if (buf.length < 2) return undefined;
  const second = buf[1] as number;
  let length = second & 0x7f;
  let at = 2;
  if (length === 126) {
    if (buf.length < 4) return undefined;
    length = buf.readUInt16BE(2);
    at = 4;
  } else if (length === 127) {
    if (buf.length < 10) return undefined;
    length = Number(buf.readBigUInt64BE(2));
    at = 10;
  }
  const maskAt = at;
  const masked = (second & 0x80) !== 0;
  if (masked) at += 4;
  if (buf.length < at + length) return undefined;
  const payload = Buffer.from(buf.subarray(at, at + length));
  if (masked) for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (buf[maskAt + (i & 3)] as number);
  return { bytes: buf.subarray(0, at + length), opcode: (buf[0] as number) & 0x0f, payload };
}

export class RawWebSocket {
  /** Text frames from the relay, in order (Engine.IO packets). */
  readonly texts: string[] = [];
  /** Resolves when the TCP connection is gone. */
  private readonly ended: Promise<void>;
  private tcp: Socket;
  private buffer = Buffer.alloc(0);
  private gone = false;
  private waiters: (() => void)[] = [];

  constructor(tcp: Socket, head: Buffer) {
    this.tcp = tcp;
    this.ended = new Promise((resolve) => tcp.once('close', () => resolve()));
    tcp.on('close', () => {
      this.gone = true;
      this.wake();
    });
    tcp.on('error', () => tcp.destroy());
    tcp.on('end', () => tcp.end());
    tcp.on('data', (chunk: Buffer) => this.receive(chunk));
    if (head.length > 0) this.receive(head);
  }

  /** Writes raw bytes; ignored once the connection is gone (the relay may close mid-burst). */
  write(bytes: Buffer): void {
    if (!this.gone && this.tcp.writable) this.tcp.write(bytes);
  }

  send(frame: FrameSpec): void {
    this.write(encodeFrame(frame));
  }

  sendText(text: string): void {
    this.send({ opcode: OPCODE.text, payload: text });
  }

  /** Resolves with the first text frame (from `from` on) that matches; rejects if the connection ends first. */
  async nextText(match: (text: string) => boolean, what: string, timeoutMs = 5000, from = 0): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.texts.slice(from).find(match);
      if (found !== undefined) return found;
      if (this.gone) throw new Error(`connection closed while waiting for ${what}; got ${JSON.stringify(this.texts)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.texts)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Resolves true once the relay has closed the connection, false if it is still open after `timeoutMs`. */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const open = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const result = await Promise.race([this.ended.then(() => true), open]);
    clearTimeout(timer);
    return result;
  }

  destroy(): void {
    this.tcp.destroy();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private receive(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (let frame = decodeFrame(this.buffer); frame; frame = decodeFrame(this.buffer)) {
      this.buffer = this.buffer.subarray(frame.bytes.length);
      this.onFrame(frame.opcode, frame.payload);
    }
  }

  private onFrame(opcode: number, payload: Buffer): void {
    if (opcode === OPCODE.text) {
      const text = payload.toString();
      this.texts.push(text);
      if (text === '2') this.sendText('3'); // Engine.IO ping
    } else if (opcode === OPCODE.ping) {
      this.send({ opcode: OPCODE.pong, payload });
    } else if (opcode === OPCODE.close) {
      this.send({ opcode: OPCODE.close, payload: payload.subarray(0, 2) });
      this.tcp.end();
    }
    this.wake();
  }
}

/** Opens a WebSocket to the relay's Socket.IO endpoint (no Origin) and waits for the Engine.IO open packet. */
export function openRawWebSocket(port: number): Promise<RawWebSocket> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      path: '/socket.io/?EIO=4&transport=websocket',
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64') },
    });
    req.on('upgrade', (_res, tcp, head) => {
      const ws = new RawWebSocket(tcp, head);
      ws.nextText((t) => t.startsWith('0{'), 'the Engine.IO open packet').then(() => resolve(ws), reject);
    });
    req.on('response', (res) => {
      res.resume();
      reject(new Error(`upgrade refused with ${res.statusCode}`));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A raw WebSocket that has also done the Parley handshake (`40{auth}` answered by `40{"sid"…}`). */
export async function joinRawWebSocket(url: string, port: number, identity: Identity = generateIdentity(), name = 'raw'): Promise<{ ws: RawWebSocket; identity: Identity }> {
  const ws = await openRawWebSocket(port);
  const auth = buildAuth(identity, await fetchHello(new URL(url)), { name });
  ws.sendText(`40${JSON.stringify(auth)}`);
  const answer = await ws.nextText((t) => t.startsWith('40{') || t.startsWith('44'), 'the handshake answer');
  if (!answer.startsWith('40{"sid"')) throw new Error(`handshake refused: ${answer}`);
  return { ws, identity };
}

/** A raw WebSocket upgrade; resolves with the HTTP status and the error code of a refusal. */
export function upgradeAnswer(port: number, headers: Record<string, string> = {}): Promise<{ status: number; code?: string }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port, path: '/socket.io/?EIO=4&transport=websocket',
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64'), ...headers },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0 });
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, code: /"code":"(E_[A-Z_]+)"/.exec(body)?.[1] }));
    });
    req.on('error', reject);
    req.end();
  });
}
