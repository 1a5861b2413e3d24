/**
 * The real probe: the one place systeminformation is imported, and only when something needs it.
 *
 * On Linux nothing does, round after round: CPU usage and temperature, memory, network counters,
 * filesystem sizes and the battery come from /proc, /sys and statfs (linux/proc.ts,
 * linux/sensors.ts, linux/battery.ts), uptime and load from Node, the maker and model from DMI
 * (linux/static.ts), NVIDIA GPUs from one nvidia-smi in loop mode (nvidia-smi.ts).
 * systeminformation would start processes for most of them on every round, and loading it costs
 * several MiB of memory. Its graphics() adds nothing live on Linux (its GPU figures come from
 * nvidia-smi too), so the agent does not ask it there; `inventory` (for --record) does, to record
 * what the machine has. On Windows and macOS systeminformation is loaded on first use.
 */
import { existsSync } from 'node:fs';
import { loadavg, networkInterfaces, uptime } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../../common/logger.js';
import { batteryReader } from './linux/battery.js';
import { cpuLoadReader, fsSizeReader, parseMeminfo, parseProcNetDev, readProc } from './linux/proc.js';
import { cpuTemperatureReader } from './linux/sensors.js';
import { linuxStaticInfo } from './linux/static.js';
import { NvidiaSmiStream } from './nvidia-smi.js';
import type { Probe, StaticInfo } from './index.js';

type Si = typeof import('systeminformation');
/** systeminformation, loaded on first use (the module system keeps it after). */
const si = async (): Promise<Si> => (await import('systeminformation')).default;

function nvidiaSmiPath(platform: NodeJS.Platform): string {
  if (platform === 'win32') {
    const system32 = join(process.env['WINDIR'] ?? 'C:\\Windows', 'System32', 'nvidia-smi.exe');
    if (existsSync(system32)) return system32;
  }
  return 'nvidia-smi';
}

export interface SystemProbeOptions {
  /** nvidia-smi's loop interval: the agent's SAMPLE_INTERVAL (default 10 s). */
  readonly intervalMs?: number;
  /** What the machine has, as systeminformation describes it, for recordings (graphics, static facts). */
  readonly inventory?: boolean;
  readonly logger?: Logger | undefined;
}

/** The probe of this machine, and `close()` to end what it started (nvidia-smi). */
export type SystemProbe = Probe & { readonly close: () => void };

async function siStaticInfo(): Promise<StaticInfo> {
  const s = await si();
  const [osInfo, system, cpu] = await Promise.all([s.osInfo(), s.system(), s.cpu()]);
  return { osInfo: { ...osInfo }, system: { ...system }, cpu: { ...cpu } };
}

export function createSystemProbe(platform: NodeJS.Platform = process.platform, options: SystemProbeOptions = {}): SystemProbe {
  const linux = platform === 'linux';
  const nvidia = new NvidiaSmiStream({ path: nvidiaSmiPath(platform), intervalMs: options.intervalMs ?? 10_000, logger: options.logger });
  const readMeminfo = readProc('/proc/meminfo');
  const readNetDev = readProc('/proc/net/dev');
  return {
    currentLoad: linux ? cpuLoadReader() : async () => (await si()).currentLoad(),
    cpuTemperature: linux ? cpuTemperatureReader() : async () => (await si()).cpuTemperature(),
    mem: linux ? async () => parseMeminfo(await readMeminfo()) : async () => (await si()).mem(),
    fsSize: linux ? fsSizeReader() : async () => (await si()).fsSize(),
    networkStats: linux
      ? async () => parseProcNetDev(await readNetDev(), new Set(Object.keys(networkInterfaces())))
      : async () => (await si()).networkStats('*'),
    graphics: linux && !options.inventory ? () => Promise.resolve({ controllers: [] }) : async () => (await si()).graphics(),
    nvidiaSmi: () => nvidia.read(),
    battery: linux ? batteryReader() : async () => (await si()).battery(),
    // systeminformation's time() takes uptime from Node too, and runs `date` twice and `ls` for the time zone.
    time: () => Promise.resolve({ uptime: uptime() }),
    // Windows has no load average: Node reports [0, 0, 0] there, which would be a fake 0.
    loadavg: () => Promise.resolve(platform === 'win32' ? null : (loadavg() as [number, number, number])),
    staticInfo: async () => (linux && !options.inventory ? linuxStaticInfo() : undefined) ?? siStaticInfo(),
    close: () => nvidia.stop(),
  };
}
