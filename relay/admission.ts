// The handshake deadline and the Socket.IO admission middleware. Every transport connection
// must be admitted within the deadline; a refused handshake is logged and, when it was the
// client's fault, counted towards its address's throttle. A binary packet closes any
// transport connection (the protocol has none), and before admission counts as refused too,
// like any other frame or packet that closes the connection (not WebSocket, Engine.IO or
// Socket.IO as the protocol has them).
import type { Server as EngineServer, Socket as EngineSocket } from 'engine.io';
import { cutErrorMessage, type ConnectErrorData, type ErrorCode } from './protocol.ts';
import type { RelayIo, RelaySocket } from './handlers.ts';
import type { Logger } from './log.ts';
import type { AddressLimits } from './state.ts';
import { clientAddress } from './http.ts';

export type Refusal = { code: ErrorCode; message: string };

/** The default handshake deadline (RelayOptions.connectTimeoutMs). */
export const CONNECT_TIMEOUT_MS = 5_000;

/** How much longer than the deadline an admission being checked may take. */
export const ADMISSION_GRACE_MS = 30_000;

/** Where a transport connection stands with the handshake deadline. */
interface Handshake {
  conn: EngineSocket;
  /** CONNECT packets being checked. */
  checking: number;
  admitted: boolean;
  /** The deadline has passed. */
  expired: boolean;
  /** Closed for a malformed frame or packet, and counted as a failed handshake. */
  malformed: boolean;
}

/** Closes a connection past its deadline that is neither admitted nor being checked. */
function closeIfDue(handshake: Handshake): void {
  if (handshake.expired && !handshake.admitted && handshake.checking === 0) handshake.conn.close();
}

export interface AdmissionContext {
  engine: EngineServer;
  io: Pick<RelayIo, 'use'>;
  limits: AddressLimits;
  log: Logger;
  trustedProxies: ReadonlySet<string>;
  connectTimeoutMs: number;
  closing: () => boolean;
  /** The handshake after the transport checks: null admits, with socket.data filled in. */
  admit: (socket: RelaySocket) => Promise<Refusal | null>;
}

export function guardAdmission(ctx: AdmissionContext): void {
  const { limits, log, trustedProxies } = ctx;

  const refused = (address: string, { code, message }: Refusal) => {
    if (code !== 'E_UNAVAILABLE') limits.failed(address);
    log.warn('handshake refused', { address, code, reason: message });
  };

  const handshakes = new WeakMap<EngineSocket, Handshake>();
  ctx.engine.on('connection', (conn: EngineSocket) => {
    const address = clientAddress(conn.request, trustedProxies);
    const handshake: Handshake = { conn, checking: 0, admitted: false, expired: false, malformed: false };
    /** Before admission, like a wrong proof: a failed handshake, slowed down (once per connection). */
    const malformed = (refusal: Refusal) => {
      if (handshake.admitted || handshake.malformed) return;
      handshake.malformed = true;
      refused(address, refusal);
    };
    handshakes.set(conn, handshake);
    const deadline = setTimeout(() => {
      handshake.expired = true;
      closeIfDue(handshake);
    }, ctx.connectTimeoutMs);
    // The protocol carries no binary data: a binary packet (a Socket.IO binary event or ack,
    // or an attachment) closes the connection before Socket.IO decodes it.
    conn.on('packet', (packet: { type: string; data?: unknown }) => {
      if (packet.type !== 'message' || (typeof packet.data === 'string' && packet.data[0] !== '5' && packet.data[0] !== '6')) return;
      if (handshake.admitted) log.warn('binary packet; connection closed', { address });
      else malformed({ code: 'E_SCHEMA', message: 'binary packet' });
      conn.close();
    });
    // A packet Socket.IO cannot take (broken JSON, a CONNECT whose data is not an object,
    // anything but a CONNECT first) makes it close the connection while it handles the packet.
    // Socket.IO was bound to the engine first (relay/server.ts), so its listener has run when
    // this one sees the packet: a connection no longer open was closed for it.
    // Once admitted, nothing is counted: the listener goes at the next packet (it would run for every one).
    const watch = () => {
      if (handshake.admitted) conn.off('data', watch);
      else if (conn.readyState !== 'open') malformed({ code: 'E_SCHEMA', message: 'malformed Socket.IO packet' });
    };
    conn.on('data', watch);
    conn.once('close', (reason: string, description?: unknown) => {
      clearTimeout(deadline);
      // A frame the transport refused (over the frame cap, not valid WebSocket) or a packet
      // Engine.IO could not parse. A network drop is not counted.
      if (reason === 'transport error' || reason === 'parse error') {
        // (engine.io keeps only the text of ws's error, e.g. "RangeError: Max payload size exceeded".)
        const why = description instanceof Error ? description.message : reason;
        malformed({ code: /max payload/i.test(why) ? 'E_TOO_LARGE' : 'E_SCHEMA', message: why });
      }
    });
  });

  ctx.io.use((socket, next) => {
    const address = clientAddress(socket.request, trustedProxies);
    const refuse = ({ code, message: text }: Refusal) => {
      // Within the limit of an error message: a schema refusal may quote the client's own keys.
      const message = cutErrorMessage(text);
      refused(address, { code, message });
      const error = new Error(code) as Error & { data: ConnectErrorData };
      error.data = { code, message };
      next(error);
    };
    if (ctx.closing()) return refuse({ code: 'E_UNAVAILABLE', message: 'the relay is shutting down' });
    const handshake = handshakes.get(socket.conn) ?? { conn: socket.conn, checking: 0, admitted: false, expired: false, malformed: false };
    handshake.checking += 1;
    void ctx.admit(socket)
      .catch((error: unknown): Refusal => {
        log.error('handshake failed', { error: String(error) });
        return { code: 'E_UNAVAILABLE', message: 'the relay could not complete the handshake' };
      })
      .then((refusal) => {
        handshake.checking -= 1;
        if (!refusal) {
          handshake.admitted = true;
          return next();
        }
        refuse(refusal);
        // Refused after the deadline: closed now, as it would have been then, once the answer
        // is queued (Socket.IO sends it on the next tick; close() lets queued packets out).
        setImmediate(() => closeIfDue(handshake));
      });
  });
}
