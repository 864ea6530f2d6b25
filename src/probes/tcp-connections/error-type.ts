/**
 * error.type of a failed connection from the socket's sk_err (an errno).
 * Names come from Node's errno table for this platform, not from constants
 * copied here.
 */
import os from 'node:os';

const errnoNames = new Map<number, string>(Object.entries(os.constants.errno).map(([name, value]) => [value, name]));

const WELL_KNOWN: Record<string, string> = {
  ECONNREFUSED: 'refused',
  ETIMEDOUT: 'timed_out',
  ECONNRESET: 'reset',
  EHOSTUNREACH: 'host_unreachable',
  ENETUNREACH: 'network_unreachable',
  ECONNABORTED: 'aborted',
};

export function connectErrorType(errno: number): string {
  // sk_err 0: the application closed the socket before the handshake finished.
  if (errno === 0) return 'aborted';
  const name = errnoNames.get(errno);
  if (!name) return `errno_${errno}`;
  return WELL_KNOWN[name] ?? name.toLowerCase();
}
