// Where people on the network can reach a relay bound to `host`, and peer addresses written
// one way whichever socket family they arrived on.
import { isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';

/** An IP address as the relay compares and logs it: an IPv4-mapped IPv6 one (`::ffff:10.0.0.2`, a dual-stack socket's view of IPv4) as plain IPv4, IPv6 in lower case. */
export function canonicalAddress(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped?.[1]) return mapped[1];
  return isIPv6(address) ? address.toLowerCase() : address;
}

export function joinAddresses(host: string, port: number): string[] {
  // An IPv6 address takes brackets before its port, as a URL writes it.
  if (host !== '0.0.0.0' && host !== '::') return [isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`];
  const found = Object.values(networkInterfaces())
    .flat()
    .filter((i) => i !== undefined && i.family === 'IPv4' && !i.internal)
    .map((i) => `${i?.address}:${port}`);
  return found.length > 0 ? found : [`127.0.0.1:${port}`];
}
