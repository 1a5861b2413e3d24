/**
 * What a fault test does to and reads from processes it started, by PID only: freeze, thaw and
 * crash them, count their TCP sockets and their memory from /proc.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

function pidOf(child: ChildProcess): number {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) throw new Error('the process is not running');
  return child.pid;
}

/** SIGSTOP: the process stops, its sockets stay open (the kernel still accepts connections). */
export function freeze(child: ChildProcess): void {
  process.kill(pidOf(child), 'SIGSTOP');
}

/** SIGCONT after `freeze`. */
export function thaw(child: ChildProcess): void {
  process.kill(pidOf(child), 'SIGCONT');
}

/** SIGKILL, resolved once the process is gone. */
export async function crash(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(pidOf(child), 'SIGKILL');
  await exited;
}

export interface TcpSocket {
  readonly localPort: number;
  readonly remotePort: number;
  /** Kernel state, e.g. 01 ESTABLISHED, 06 TIME_WAIT, 0A LISTEN. */
  readonly state: string;
}

/** The TCP sockets a process holds open (from /proc/<pid>/fd and /proc/<pid>/net/tcp{,6}). */
export function tcpSockets(child: ChildProcess): TcpSocket[] {
  const pid = pidOf(child);
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1]) inodes.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  const sockets: TcpSocket[] = [];
  for (const table of ['tcp', 'tcp6']) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || !inodes.has(f[9] as string)) continue;
      const port = (address: string | undefined): number => Number.parseInt(address?.split(':')[1] ?? '0', 16);
      sockets.push({ localPort: port(f[1]), remotePort: port(f[2]), state: f[3] as string });
    }
  }
  return sockets;
}

/** A memory line of /proc/<pid>/status, in bytes. */
function statusBytes(child: ChildProcess, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pidOf(child)}/status`, 'utf8');
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
}

/** Resident memory of a process, bytes. */
export function rssBytes(child: ChildProcess): number {
  return statusBytes(child, 'VmRSS');
}

/** Peak resident memory of a process since it started (VmHWM), bytes. */
export function peakRssBytes(child: ChildProcess): number {
  return statusBytes(child, 'VmHWM');
}

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks. */
const TICKS_PER_SECOND = 100;

/** User + system CPU time of a process so far, microseconds (10 ms resolution). */
export function cpuMicros(child: ChildProcess): number {
  const stat = readFileSync(`/proc/${pidOf(child)}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / TICKS_PER_SECOND;
}

/** Write system calls (write, writev, …, on files and sockets alike) a process has made so far (/proc/<pid>/io). */
export function writeCalls(child: ChildProcess): number {
  return Number(/^syscw:\s+(\d+)/m.exec(readFileSync(`/proc/${pidOf(child)}/io`, 'utf8'))?.[1] ?? Number.NaN);
}
