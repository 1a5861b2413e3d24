/**
 * CPU temperatures from hwmon and the thermal zones in sysfs, where systeminformation runs two `cat`s
 * per hwmon sensor and one of the thermal zones, through a shell with execSync, on every round. A
 * sensor driver may take its time, so these reads stay asynchronous; each sensor's file is opened
 * once and read with one call per round.
 */
import { close as closeFd, open as openFd, read as readFd } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { CpuTemperature } from '../index.js';

/** Without sensors (a VM), how often they are looked for again (a driver may load after the agent starts). */
const SEARCH_AGAIN_MS = 60_000;

const celsius = (milli: string): number => Math.round(Number.parseInt(milli, 10) / 100) / 10;
/** Directory entries matching `pattern`, in the order a shell glob gives them. */
async function entries(dir: string, pattern: RegExp): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((name) => pattern.test(name)).sort();
  } catch {
    return [];
  }
}
const readTrimmed = (path: string): Promise<string | undefined> =>
  readFile(path, 'utf8').then(
    (t) => t.trim(),
    () => undefined,
  );

/**
 * A sysfs attribute read again and again: opened once, then one read from offset 0 per call (the
 * kernel renders the value afresh: one trip through libuv's pool instead of open, stat, read, read,
 * close); after a failure it is opened again on the next call. The descriptor stays open for the
 * reader's life (the agent's).
 */
export function sysfsValue(path: string): () => Promise<string | undefined> {
  let fd: Promise<number> | undefined;
  const buffer = Buffer.alloc(4096);
  return async () => {
    try {
      fd ??= new Promise((resolve, reject) => openFd(path, 'r', (error, opened) => (error ? reject(error) : resolve(opened))));
      const handle = await fd;
      const bytes = await new Promise<number>((resolve, reject) =>
        readFd(handle, buffer, 0, buffer.length, 0, (error, n) => (error ? reject(error) : resolve(n))),
      );
      return buffer.toString('utf8', 0, bytes).trim();
    } catch {
      const failed = fd;
      fd = undefined;
      void failed?.then(
        (h) => closeFd(h, () => undefined),
        () => undefined,
      );
      return undefined;
    }
  };
}

interface Sensors {
  /** hwmon temperatures in glob order, cut before the first "Tdie": label and the file of the value. */
  readonly hwmon: readonly { readonly label: string; readonly input: () => Promise<string | undefined> }[];
  /** Temperatures of the thermal zones whose type names the CPU. */
  readonly cpuZones: readonly (() => Promise<string | undefined>)[];
}

/** Where the CPU temperatures are: labels and zone types do not change while the agent runs. */
async function findSensors(root: string): Promise<Sensors> {
  const hwmon: { label: string; input: () => Promise<string | undefined> }[] = [];
  for (const mon of await entries(join(root, 'hwmon'), /^hwmon\d+$/)) {
    const dir = join(root, 'hwmon', mon);
    for (const labelFile of await entries(dir, /^temp\d+_label$/)) {
      hwmon.push({ label: (await readTrimmed(join(dir, labelFile))) ?? '', input: sysfsValue(join(dir, labelFile.replace(/_label$/, '_input'))) });
    }
  }
  const tdie = hwmon.findIndex((s) => s.label.toLowerCase().includes('tdie'));
  const cpuZones: (() => Promise<string | undefined>)[] = [];
  for (const zone of await entries(join(root, 'thermal'), /^thermal_zone\d+$/)) {
    if ((await readTrimmed(join(root, 'thermal', zone, 'type')))?.toLowerCase().includes('cpu')) cpuZones.push(sysfsValue(join(root, 'thermal', zone, 'temp')));
  }
  return { hwmon: tdie >= 0 ? hwmon.slice(tdie) : hwmon, cpuZones };
}

/**
 * CPU temperatures from sysfs, by systeminformation's rules for Linux (lib/cpu.js): the hwmon
 * sensors in glob order, cut before the first "Tdie"; `Tctl`, a `Package`/`Physical` label, `Tccd1`
 * or `Tdie` gives the main temperature, `Core …` labels the cores; with no such label, the first
 * thermal zone whose type names the CPU. The sensors are found once (until some are, again every
 * minute: a driver may load after the agent starts); a round reads only their values. `root` is
 * /sys/class (a folder of the same shape in tests).
 */
export function cpuTemperatureReader(root = '/sys/class', now: () => number = () => performance.now()): () => Promise<CpuTemperature> {
  let sensors: Sensors | undefined;
  let searchedAt = Number.NEGATIVE_INFINITY;
  return async () => {
    const none = !sensors || (sensors.hwmon.length === 0 && sensors.cpuZones.length === 0);
    if (none && now() - searchedAt >= SEARCH_AGAIN_MS) {
      searchedAt = now();
      sensors = await findSensors(root);
    }
    if (!sensors) return { main: null, cores: [], max: null };
    const values = await Promise.all(sensors.hwmon.map((s) => s.input()));
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
    for (const zone of sensors.cpuZones) {
      const temp = await zone();
      if (temp) return { main: celsius(temp), cores: [], max: celsius(temp) };
    }
    return { main: null, cores: [], max: null };
  };
}
