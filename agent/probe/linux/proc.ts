/**
 * Linux readings taken straight from /proc, where systeminformation would start processes: its
 * currentLoad() runs `cat /proc/stat | grep cpu`, networkStats() three `cat`s per interface, fsSize()
 * `cat /proc/mounts` and `df`, each through a shell, most with execSync (blocking the event loop), on
 * every round; its mem() reads /proc/meminfo seven times. Same shapes as systeminformation's, so
 * collectors and recordings are unchanged. (CPU temperatures: agent/probe/linux/sensors.ts.)
 *
 * /proc files are read synchronously: the kernel makes them up in memory, and a read through libuv's
 * pool would cost a handful of thread hand-overs (open, stat, read, read, close) for microseconds of
 * work. What can hang stays asynchronous: statfs of a network mount.
 */
import { readFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import type { CpuLoad, Filesystem, Memory, NetworkStat } from '../index.js';

/** A /proc file's text, read synchronously (a rejected promise when it cannot be read). */
export const readProc = (path: string) => async (): Promise<string> => readFileSync(path, 'utf8');

/** Interface byte counters from /proc/net/dev, for the interfaces in `names` (those with an address, as systeminformation lists). */
export function parseProcNetDev(text: string, names: ReadonlySet<string>): NetworkStat[] {
  const stats: NetworkStat[] = [];
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const iface = line.slice(0, colon).trim();
    const fields = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    const [rx, tx] = [fields[0], fields[8]];
    if (!names.has(iface) || rx === undefined || tx === undefined || !Number.isFinite(rx) || !Number.isFinite(tx)) continue;
    stats.push({ iface, rx_bytes: rx, tx_bytes: tx });
  }
  return stats;
}

export interface CpuTicks {
  readonly busy: number;
  readonly total: number;
}

/** All-CPU ticks from /proc/stat's `cpu` line: idle and iowait count as idle, the rest (steal included) as busy. */
export function parseProcStat(text: string): CpuTicks | undefined {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  const ticks = line?.trim().split(/\s+/).slice(1, 9).map(Number);
  if (!ticks || ticks.length < 8 || ticks.some((t) => !Number.isFinite(t))) return undefined;
  const total = ticks.reduce((a, b) => a + b, 0);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  return { busy: total - idle, total };
}

/** CPU usage since the previous call (since boot on the first), as systeminformation's currentLoad. */
export function cpuLoadReader(read: () => Promise<string> = readProc('/proc/stat')): () => Promise<CpuLoad> {
  let previous: CpuTicks = { busy: 0, total: 0 };
  return async () => {
    const now = parseProcStat(await read());
    if (!now) throw new Error('cannot read CPU ticks from /proc/stat');
    const total = now.total - previous.total;
    const load = total > 0 ? (100 * (now.busy - previous.busy)) / total : 0;
    previous = now;
    return { currentLoad: load };
  };
}

export interface Mount {
  readonly device: string;
  readonly mount: string;
  readonly type: string;
}

/** Kernel filesystems that hold no data: never asked for their size. */
const PSEUDO = new Set([
  'proc',
  'sysfs',
  'cgroup',
  'cgroup2',
  'devpts',
  'mqueue',
  'securityfs',
  'debugfs',
  'tracefs',
  'pstore',
  'bpf',
  'configfs',
  'fusectl',
  'binfmt_misc',
  'autofs',
  'hugetlbfs',
  'nsfs',
  'rpc_pipefs',
  'efivarfs',
  'selinuxfs',
  'ramfs',
  'squashfs',
]);

/** /proc/mounts, with its octal escapes (`\040` for a space) decoded; kernel pseudo filesystems left out. */
export function parseProcMounts(text: string): Mount[] {
  const unescapeOctal = (field: string): string => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
  const mounts: Mount[] = [];
  for (const line of text.split('\n')) {
    const [device, mount, type] = line.split(' ');
    if (!device || !mount || !type || PSEUDO.has(type)) continue;
    mounts.push({ device: unescapeOctal(device), mount: unescapeOctal(mount), type });
  }
  return mounts;
}

type StatFs = (path: string) => Promise<{ bsize: number; blocks: number; bfree: number; bavail: number }>;

/** Size and use of every mounted filesystem, as `df` gives them: used = blocks − free, use % = used / (used + available). */
export function fsSizeReader(read: () => Promise<string> = readProc('/proc/mounts'), stat: StatFs = (path) => statfs(path)): () => Promise<Filesystem[]> {
  return async () => {
    const mounts = parseProcMounts(await read());
    // Asynchronous: a hung network mount holds a thread of libuv's pool, not the agent.
    const sizes = await Promise.allSettled(mounts.map((m) => stat(m.mount)));
    const filesystems: Filesystem[] = [];
    mounts.forEach((m, i) => {
      const result = sizes[i];
      if (result?.status !== 'fulfilled') return;
      const { bsize, blocks, bfree, bavail } = result.value;
      const used = (blocks - bfree) * bsize;
      const available = bavail * bsize;
      filesystems.push({
        fs: m.device,
        type: m.type,
        size: blocks * bsize,
        used,
        available,
        use: used + available > 0 ? (100 * used) / (used + available) : null,
        mount: m.mount,
      });
    });
    return filesystems;
  };
}

const KIB = 1024;

/** Memory and swap from /proc/meminfo, by systeminformation's formulas (available: MemAvailable, else free + buffers + cache + slab). */
export function parseMeminfo(text: string): Memory {
  const kib = new Map<string, number>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) kib.set(line.slice(0, colon).toLowerCase(), Number.parseInt(line.slice(colon + 1), 10));
  }
  const bytes = (key: string): number => {
    const value = kib.get(key);
    return value !== undefined && Number.isFinite(value) ? value * KIB : 0;
  };
  const total = bytes('memtotal');
  const available = bytes('memavailable') || bytes('memfree') + bytes('buffers') + bytes('cached') + bytes('slab');
  const swaptotal = bytes('swaptotal');
  return { total, available, swaptotal, swapused: swaptotal - bytes('swapfree') };
}
