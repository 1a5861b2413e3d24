/**
 * A process and its descendants, read from /proc by PID: CPU time of the whole tree (children it
 * reaped included), resident memory, the PIDs that appear in it; and the processes a run under
 * `strace -f` started, from strace's log.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks. */
const TICKS_PER_SECOND = 100;

interface Stat {
  readonly ppid: number;
  /** utime + stime of all its threads, plus cutime + cstime of the children it waited for. */
  readonly ticks: number;
}

/** undefined once the process is gone. */
function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the command name (which may hold spaces and parentheses): ppid is field 4,
  // utime 14, stime 15, cutime 16, cstime 17.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) };
}

export interface TreeSnapshot {
  /** The root first, then its live descendants. */
  readonly pids: number[];
  /** CPU time of the tree so far, microseconds (10 ms resolution). */
  readonly cpuMicros: number;
}

/**
 * One pass over /proc. A child that exits is counted once: its time moves into its parent's
 * cutime/cstime when reaped (Node and Python reap their children).
 */
export function treeSnapshot(root: number): TreeSnapshot {
  const stats = new Map<number, Stat>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (stat) stats.set(Number(name), stat);
  }
  if (!stats.has(root)) throw new Error(`process ${root} is not running`);
  const pids = [root];
  for (let i = 0; i < pids.length; i++) for (const [pid, s] of stats) if (s.ppid === pids[i]) pids.push(pid);
  const ticks = pids.reduce((sum, pid) => sum + (stats.get(pid)?.ticks ?? 0), 0);
  return { pids, cpuMicros: (ticks * 1_000_000) / TICKS_PER_SECOND };
}

/** VmRSS of each process, summed (shared pages are counted in each, as `ps` does). */
export function rssBytes(pids: readonly number[]): number {
  let kb = 0;
  for (const pid of pids) {
    try {
      kb += Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // exited meanwhile
    }
  }
  return kb * 1024;
}

export interface TreeWatch {
  /** Ends the polling: RSS of the tree (peak and mean of the samples) and PIDs that joined it. */
  stop(): { peakRssBytes: number; meanRssBytes: number; joined: number[] };
}

/**
 * Polls the tree under `root`: its members every `pidsEveryMs` (a child shorter-lived than that
 * can be missed; strace counts exactly), its RSS every `rssEveryMs`.
 */
export function watchTree(root: number, pidsEveryMs = 100, rssEveryMs = 250): TreeWatch {
  let members = treeSnapshot(root).pids;
  const initial = new Set(members);
  const joined = new Set<number>();
  const rss: number[] = [rssBytes(members)];
  const pidTimer = setInterval(() => {
    try {
      members = treeSnapshot(root).pids;
    } catch {
      return; // the root exited; stop() reports what was seen
    }
    for (const pid of members) if (!initial.has(pid)) joined.add(pid);
  }, pidsEveryMs);
  const rssTimer = setInterval(() => rss.push(rssBytes(members)), rssEveryMs);
  return {
    stop() {
      clearInterval(pidTimer);
      clearInterval(rssTimer);
      rss.push(rssBytes(members));
      return { peakRssBytes: Math.max(...rss), meanRssBytes: rss.reduce((a, b) => a + b, 0) / rss.length, joined: [...joined] };
    },
  };
}

/**
 * Arguments for strace: the calls that create processes and run programs, with wall-clock times;
 * --seccomp-bpf stops the program only at those calls, not at every one.
 */
export const STRACE_ARGS = ['-f', '--seccomp-bpf', '-qq', '-ttt', '-s', '200', '-e', 'trace=execve,fork,vfork,clone,clone3'] as const;

export interface Started {
  readonly pid: number;
  readonly parent: number;
  /** Epoch ms of the fork. */
  readonly at: number;
  /** The first program it ran (argv joined; "(failed)" after one it tried and could not run), or undefined for a fork that tried none. */
  readonly command: string | undefined;
}

const FORKS = new Set(['fork', 'vfork', 'clone', 'clone3']);
const UNFINISHED = ' <unfinished ...>';

/**
 * The processes (not threads: no CLONE_THREAD) started in a log written with STRACE_ARGS. A call
 * interrupted by another thread's line comes in two lines, `call(... <unfinished ...>` and
 * `<... call resumed>...) = result`. Failed execve (the PATH search) are skipped.
 */
export function parseStrace(log: string): Started[] {
  const pending = new Map<number, { text: string; at: number }>();
  const forks: Omit<Started, 'command'>[] = [];
  const commands = new Map<number, string>();
  const failed = new Map<number, string>();
  for (const line of log.split('\n')) {
    const m = /^(\d+)\s+(\d+\.\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const pid = Number(m[1]);
    let at = Number(m[2]) * 1000;
    let call = m[3] as string;
    if (call.endsWith(UNFINISHED)) {
      pending.set(pid, { text: call.slice(0, -UNFINISHED.length), at });
      continue;
    }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(call);
    if (resumed) {
      const start = pending.get(pid);
      pending.delete(pid);
      if (!start) continue;
      call = start.text + (resumed[1] as string);
      at = start.at;
    }
    const name = /^(\w+)\(/.exec(call)?.[1] ?? '';
    const result = Number(/\)\s+=\s+(-?\d+)(?:\s.*)?$/.exec(call)?.[1] ?? -1);
    if (FORKS.has(name) && result > 0 && !call.includes('CLONE_THREAD')) forks.push({ pid: result, parent: pid, at });
    if (name === 'execve' && result === 0 && !commands.has(pid)) commands.set(pid, argv(call));
    if (name === 'execve' && result < 0) failed.set(pid, `${argv(call)} (failed)`);
  }
  return forks.map((f) => ({ ...f, command: commands.get(f.pid) ?? failed.get(f.pid) }));
}

/** `execve("/bin/sh", ["sh", "-c", "x"], 0x… /* n vars *\/)` → `sh -c x`. */
function argv(call: string): string {
  // strace marks an argument it cut at -s characters with "..." after the closing quote.
  const list = (/^execve\("(?:[^"\\]|\\.)*", \[(.*)\], 0x/.exec(call)?.[1] ?? '').replace(/"\.\.\.(?=,|$)/g, '…"');
  try {
    return (JSON.parse(`[${list}]`) as string[]).join(' ');
  } catch {
    return list; // an escape JSON does not know (\x..)
  }
}
