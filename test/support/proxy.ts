// Test support: a TCP proxy that can blackhole a link (stop forwarding, send no FIN), the
// way a pulled cable or a sleeping laptop looks to the other side.
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface Proxy {
  port: number;
  url: string;
  /** Stops forwarding in both directions without closing anything. */
  blackhole(): void;
  /** Forwards half of the next chunk the client sends (a frame cut in the middle), then blackholes. */
  cutMidFrame(): void;
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
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    const tapped = tap?.(client, upstream);
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(from);
      from.on('data', (chunk: Buffer) => {
        if (tapped) return from === client ? tapped.fromClient(chunk) : tapped.fromUpstream(chunk);
        if (cutting && from === client && chunk.length > 1) {
          cutting = false;
          dropping = true;
          to.write(chunk.subarray(0, chunk.length >> 1));
        }
        if (!dropping) to.write(chunk);
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
    heal: () => {
      cutting = false;
      dropping = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
