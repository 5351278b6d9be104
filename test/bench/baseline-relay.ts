// Child process: the baseline, a relay as the Socket.IO private-messaging tutorial builds it.
// Username auth in the handshake, a room per user, presence broadcasts, and
// `socket.to(to).emit('private message', { content, from })`: no persistence, no acks.
// Like Parley (presence:update to everyone, directory paged on request), it pushes presence
// changes to everyone; the tutorial's full user list on connect, which Parley does not
// push, is left out (it would make connecting 2,000 clients slower still).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, type Socket } from 'socket.io';
import { serve, type RelayApi } from './ipc.ts';
import { lagSinceLast, memoryNow, ready } from './child.ts';

interface PrivateMessage {
  content: string;
  to: string;
}
interface ServerEvents {
  'user connected': (user: { userID: string; username: string }) => void;
  'user disconnected': (userID: string) => void;
  'private message': (message: { content: string; from: string }) => void;
}
interface ClientEvents {
  'private message': (message: PrivateMessage) => void;
}
interface Data {
  username: string;
}

const httpServer = createServer();
const io = new Server<ClientEvents, ServerEvents, Record<string, never>, Data>(httpServer, {
  serveClient: false,
  transports: ['websocket'],
  perMessageDeflate: false,
});

io.use((socket, next) => {
  const auth: unknown = socket.handshake.auth;
  const username = typeof auth === 'object' && auth !== null && 'username' in auth ? auth.username : undefined;
  if (typeof username !== 'string' || username === '') return next(new Error('invalid username'));
  socket.data.username = username;
  next();
});

io.on('connection', (socket: Socket<ClientEvents, ServerEvents, Record<string, never>, Data>) => {
  const username = socket.data.username;
  void socket.join(username);
  socket.broadcast.emit('user connected', { userID: username, username });
  socket.on('private message', ({ content, to }) => {
    socket.to(to).emit('private message', { content, from: username });
  });
  socket.on('disconnect', () => {
    socket.broadcast.emit('user disconnected', username);
  });
});

serve<RelayApi>({
  mem: async () => memoryNow(),
  lag: async () => lagSinceLast(),
  stop: async () => {
    await io.close();
    setTimeout(() => process.exit(0), 50);
    return { stopped: true };
  },
});

httpServer.listen(0, '127.0.0.1', () => ready((httpServer.address() as AddressInfo).port));
