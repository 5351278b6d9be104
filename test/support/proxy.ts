// Test support: a TCP proxy that can blackhole a link (stop forwarding, send no FIN), the
// way a pulled cable or a sleeping laptop looks to the other side, slow the target's replies
// down, or close connections (all of them, or the one a given request goes through).
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface Proxy {
  port: number;
  url: string;
  /** Stops forwarding in both directions without closing anything. */
  blackhole(): void;
  /** Forwards half of the next chunk the client sends (a frame cut in the middle), then blackholes. */
  cutMidFrame(): void;
  /** Holds what the target sends back for `ms` before forwarding it, in order (a slow server). */
  slowReplies(ms: number): void;
  /** Closes every connection and refuses new ones until heal() (the target went away). */
  refuse(): void;
  /** Closes the connection that next carries these bytes from the client, before they reach the target (once). */
  dropOn(bytes: string): void;
  heal(): void;
  close(): Promise<void>;
}

/**
 * Reads each connection's two directions instead of forwarding them as they come: each
 * function gets what arrives from one side and writes what it chooses to the other.
 */
export type Tap = (client: Socket, upstream: Socket) => { fromClient: (chunk: Buffer) => void; fromUpstream: (chunk: Buffer) => void };

export async function startProxy(targetPort: number, tap?: Tap): Promise<Proxy> {
  let dropping = false;
  let cutting = false;
  let replyDelayMs = 0;
  let refusing = false;
  let trap: string | null = null;
  const sockets = new Set<Socket>();
  // Replies held back by slowReplies(), oldest first; each goes out at its time, never before one held earlier.
  const held: { to: Socket; chunk: Buffer; at: number }[] = [];
  let releasing: NodeJS.Timeout | undefined;
  const release = () => {
    releasing = undefined;
    while (held.length > 0 && held[0]!.at <= Date.now()) {
      const { to, chunk } = held.shift()!;
      if (!to.destroyed) to.write(chunk);
    }
    if (held.length > 0) releasing = setTimeout(release, held[0]!.at - Date.now());
  };
  const server: Server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    const tapped = tap?.(client, upstream);
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(from);
      from.on('data', (chunk: Buffer) => {
        if (tapped) return from === client ? tapped.fromClient(chunk) : tapped.fromUpstream(chunk);
        if (trap !== null && from === client && chunk.includes(trap)) {
          trap = null;
          client.destroy();
          upstream.destroy();
          return;
        }
        if (cutting && from === client && chunk.length > 1) {
          cutting = false;
          dropping = true;
          to.write(chunk.subarray(0, chunk.length >> 1));
        }
        if (dropping) return;
        if (from === upstream && (replyDelayMs > 0 || held.length > 0)) {
          held.push({ to, chunk, at: Date.now() + replyDelayMs });
          releasing ??= setTimeout(release, held[0]!.at - Date.now());
        } else {
          to.write(chunk);
        }
      });
      from.on('error', () => to.destroy());
      from.on('close', () => {
        sockets.delete(from);
        to.destroy();
      });
    }
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    blackhole: () => (dropping = true),
    cutMidFrame: () => (cutting = true),
    slowReplies: (ms) => (replyDelayMs = ms),
    refuse: () => {
      refusing = true;
      for (const s of sockets) s.destroy();
    },
    dropOn: (bytes) => (trap = bytes),
    heal: () => {
      cutting = false;
      dropping = false;
      replyDelayMs = 0;
      refusing = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        clearTimeout(releasing);
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
