/**
 * Linux readings taken straight from /proc with one asynchronous file read each, where
 * systeminformation would start processes: its currentLoad() runs `cat /proc/stat | grep cpu`,
 * networkStats() three `cat`s per interface, fsSize() `cat /proc/mounts` and `df`, cpuTemperature()
 * two `cat`s per hwmon sensor and one of the thermal zones, each through a shell, most with execSync
 * (blocking the event loop), on every round. Same shapes as
 * systeminformation's, so collectors and recordings are unchanged.
 */
import { readFile, readdir, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { CpuLoad, CpuTemperature, Filesystem, NetworkStat } from './probe.js';

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

export interface Mount {
  readonly device: string;
  readonly mount: string;
  readonly type: string;
}

/** Kernel filesystems that hold no data: never asked for their size. */
const PSEUDO = new Set([
  'proc', 'sysfs', 'cgroup', 'cgroup2', 'devpts', 'mqueue', 'securityfs', 'debugfs', 'tracefs', 'pstore', 'bpf', 'configfs',
  'fusectl', 'binfmt_misc', 'autofs', 'hugetlbfs', 'nsfs', 'rpc_pipefs', 'efivarfs', 'selinuxfs', 'ramfs', 'squashfs',
]);

/** /proc/mounts, with its octal escapes (`\040` for a space) decoded; kernel pseudo filesystems left out. */
export function parseProcMounts(text: string): Mount[] {
  const unescape = (field: string): string => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
  const mounts: Mount[] = [];
  for (const line of text.split('\n')) {
    const [device, mount, type] = line.split(' ');
    if (!device || !mount || !type || PSEUDO.has(type)) continue;
    mounts.push({ device: unescape(device), mount: unescape(mount), type });
  }
  return mounts;
}

type StatFs = (path: string) => Promise<{ bsize: number; blocks: number; bfree: number; bavail: number }>;

/** Size and use of every mounted filesystem, as `df` gives them: used = blocks − free, use % = used / (used + available). */
export function fsSizeReader(read: () => Promise<string> = () => readFile('/proc/mounts', 'utf8'), stat: StatFs = (path) => statfs(path)): () => Promise<Filesystem[]> {
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
      filesystems.push({ fs: m.device, type: m.type, size: blocks * bsize, used, available, use: used + available > 0 ? (100 * used) / (used + available) : null, mount: m.mount });
    });
    return filesystems;
  };
}

const celsius = (milli: string): number => Math.round(parseInt(milli, 10) / 100) / 10;
/** Directory entries matching `pattern`, in the order a shell glob gives them. */
async function entries(dir: string, pattern: RegExp): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((name) => pattern.test(name)).sort();
  } catch {
    return [];
  }
}
const readTrimmed = (path: string): Promise<string | undefined> => readFile(path, 'utf8').then((t) => t.trim(), () => undefined);

interface Sensors {
  /** hwmon temperatures in glob order, cut before the first "Tdie": label and the file of the value. */
  readonly hwmon: readonly { readonly label: string; readonly input: string }[];
  /** Temperature files of the thermal zones whose type names the CPU. */
  readonly cpuZones: readonly string[];
}

/** Where the CPU temperatures are: labels and zone types do not change while the agent runs. */
async function findSensors(root: string): Promise<Sensors> {
  const hwmon: { label: string; input: string }[] = [];
  for (const mon of await entries(join(root, 'hwmon'), /^hwmon\d+$/)) {
    const dir = join(root, 'hwmon', mon);
    for (const labelFile of await entries(dir, /^temp\d+_label$/)) {
      hwmon.push({ label: (await readTrimmed(join(dir, labelFile))) ?? '', input: join(dir, labelFile.replace(/_label$/, '_input')) });
    }
  }
  const tdie = hwmon.findIndex((s) => s.label.toLowerCase().includes('tdie'));
  const cpuZones: string[] = [];
  for (const zone of await entries(join(root, 'thermal'), /^thermal_zone\d+$/)) {
    if ((await readTrimmed(join(root, 'thermal', zone, 'type')))?.toLowerCase().includes('cpu')) cpuZones.push(join(root, 'thermal', zone, 'temp'));
  }
  return { hwmon: tdie >= 0 ? hwmon.slice(tdie) : hwmon, cpuZones };
}

/**
 * CPU temperatures from sysfs, by systeminformation's rules for Linux (lib/cpu.js): the hwmon
 * sensors in glob order, cut before the first "Tdie"; `Tctl`, a `Package`/`Physical` label, `Tccd1`
 * or `Tdie` gives the main temperature, `Core …` labels the cores; with no such label, the first
 * thermal zone whose type names the CPU. The sensors are found once (each round until some are: a
 * driver may load after the agent starts); a round reads only their values. `root` is /sys/class (a
 * folder of the same shape in tests).
 */
export function cpuTemperatureReader(root = '/sys/class'): () => Promise<CpuTemperature> {
  let sensors: Sensors | undefined;
  return async () => {
    if (!sensors || (sensors.hwmon.length === 0 && sensors.cpuZones.length === 0)) sensors = await findSensors(root);
    const values = await Promise.all(sensors.hwmon.map((s) => readTrimmed(s.input)));
    let main: number | null = null;
    let tctl = 0;
    const cores: number[] = [];
    sensors.hwmon.forEach(({ label }, i) => {
      const value = values[i] || '0';
      const lower = label.toLowerCase();
      if (lower === 'tctl') tctl = main = celsius(value);
      if (lower.startsWith('core')) cores.push(celsius(value));
      // Tdie (older AMD kernels) too: systeminformation leaves it to lm-sensors' `sensors`, started every round.
      else if (main === null && (lower.includes('package') || lower.includes('physical') || lower === 'tccd1' || lower === 'tdie')) main = celsius(value);
    });
    if (tctl && main === null) main = tctl;
    if (cores.length > 0) {
      const found: number = main ?? Math.round(cores.reduce((a, b) => a + b, 0) / cores.length);
      return { main: found, cores, max: Math.max(found, ...cores) };
    }
    if (main !== null) return { main, cores, max: main };
    for (const file of sensors.cpuZones) {
      const temp = await readTrimmed(file);
      if (temp) return { main: celsius(temp), cores: [], max: celsius(temp) };
    }
    return { main: null, cores: [], max: null };
  };
}
