/**
 * Linux readings taken straight from /proc with one asynchronous file read each, where
 * systeminformation would start processes: its currentLoad() runs `cat /proc/stat | grep cpu` and
 * networkStats() three `cat`s per interface, each through a shell and with execSync (blocking the
 * event loop), on every round. Same shapes as systeminformation's, so collectors and recordings are
 * unchanged.
 */
import { readFile } from 'node:fs/promises';
import type { CpuLoad, NetworkStat } from './probe.js';

/** Interface byte counters from /proc/net/dev, for the interfaces in `names` (those with an address, as systeminformation lists). */
export function parseProcNetDev(text: string, names: ReadonlySet<string>): NetworkStat[] {
  const stats: NetworkStat[] = [];
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const iface = line.slice(0, colon).trim();
    const fields = line.slice(colon + 1).trim().split(/\s+/).map(Number);
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
export function cpuLoadReader(read: () => Promise<string> = () => readFile('/proc/stat', 'utf8')): () => Promise<CpuLoad> {
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
