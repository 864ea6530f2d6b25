/**
 * TCP sockets that exist when the agent starts, with the cgroup of the
 * process that owns them, so live-connection counts start from the truth
 * rather than from zero. Reads /proc/<pid>/fd (socket inodes) and, once per
 * network namespace, /proc/<pid>/net/tcp and tcp6. Sockets no process holds
 * (orphans closing down, TIME-WAIT) cannot be attributed and are skipped.
 */
import fs from 'node:fs';
import path from 'node:path';
import { netnsInode, unifiedCgroupPath } from '../../k8s/netns-index';
import { formatAddress } from '../../bpf/tuple';

export interface ExistingSocket {
  cgroupId: bigint;
  netnsIno: number;
  state: number;
  family: 'ipv4' | 'ipv6';
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
}

interface ProcNetEntry {
  state: number;
  family: 'ipv4' | 'ipv6';
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
}

/** "0100007F:1F90" (little-endian words) → ["127.0.0.1", 8080] */
export function parseProcAddress(text: string): [string, number] {
  const [hex, portHex] = text.split(':');
  const bytes = Buffer.from(hex, 'hex');
  // Each 32-bit word is printed in host (little-endian) order.
  for (let i = 0; i < bytes.length; i += 4) bytes.subarray(i, i + 4).reverse();
  const full = bytes.length === 4 ? Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]), bytes]) : bytes;
  const address = formatAddress(full);
  return [address, parseInt(portHex, 16)];
}

export function parseProcNetTcp(text: string, family: 'ipv4' | 'ipv6'): Map<string, ProcNetEntry> {
  const out = new Map<string, ProcNetEntry>();
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [localAddress, localPort] = parseProcAddress(f[1]);
    const [remoteAddress, remotePort] = parseProcAddress(f[2]);
    const inode = f[9];
    if (inode === '0') continue;
    out.set(inode, { state: parseInt(f[3], 16), family, localAddress, localPort, remoteAddress, remotePort });
  }
  return out;
}

export function existingTcpSockets(cgroupIdOf: (procPath: string) => bigint | undefined, procRoot = '/proc'): ExistingSocket[] {
  const owners = new Map<string, { cgroupId: bigint; netnsIno: number }>();
  const tables = new Map<number, Map<string, ProcNetEntry>>();
  const cgroupIds = new Map<string, bigint | undefined>();
  const cgroupId = (cgroupPath: string): bigint | undefined => {
    if (!cgroupIds.has(cgroupPath)) cgroupIds.set(cgroupPath, cgroupIdOf(cgroupPath));
    return cgroupIds.get(cgroupPath);
  };
  for (const pid of fs.readdirSync(procRoot)) {
    if (!/^\d+$/.test(pid)) continue;
    const dir = path.join(procRoot, pid);
    try {
      const netns = netnsInode(fs.readlinkSync(path.join(dir, 'ns', 'net')));
      const cgroupPath = unifiedCgroupPath(fs.readFileSync(path.join(dir, 'cgroup'), 'utf8'));
      const id = cgroupPath === undefined ? undefined : cgroupId(cgroupPath);
      if (netns === undefined || id === undefined) continue;
      if (!tables.has(netns)) {
        const table = parseProcNetTcp(fs.readFileSync(path.join(dir, 'net', 'tcp'), 'utf8'), 'ipv4');
        for (const [inode, entry] of parseProcNetTcp(fs.readFileSync(path.join(dir, 'net', 'tcp6'), 'utf8'), 'ipv6')) table.set(inode, entry);
        tables.set(netns, table);
      }
      for (const fd of fs.readdirSync(path.join(dir, 'fd'))) {
        const m = /^socket:\[(\d+)\]$/.exec(safeReadlink(path.join(dir, 'fd', fd)));
        if (m && !owners.has(m[1])) owners.set(m[1], { cgroupId: id, netnsIno: netns });
      }
    } catch {
      // the process exited while we looked
    }
  }
  const sockets: ExistingSocket[] = [];
  for (const [inode, owner] of owners) {
    const entry = tables.get(owner.netnsIno)?.get(inode);
    if (entry) sockets.push({ ...owner, ...entry });
  }
  return sockets;
}

function safeReadlink(p: string): string {
  try {
    return fs.readlinkSync(p);
  } catch {
    return '';
  }
}
