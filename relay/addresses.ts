// Where people on the network can reach a relay bound to `host`.
import { networkInterfaces } from 'node:os';

export function joinAddresses(host: string, port: number): string[] {
  if (host !== '0.0.0.0' && host !== '::') return [`${host}:${port}`];
  const found = Object.values(networkInterfaces())
    .flat()
    .filter((i) => i !== undefined && i.family === 'IPv4' && !i.internal)
    .map((i) => `${i?.address}:${port}`);
  return found.length > 0 ? found : [`127.0.0.1:${port}`];
}
