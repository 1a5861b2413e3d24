/**
 * The real probe: the one place systeminformation is imported. On Linux, CPU usage and temperature,
 * network counters and filesystem sizes come from /proc, /sys and statfs directly
 * (agent/linux-proc.ts) and uptime from Node: systeminformation starts processes for them (mostly
 * execSync, blocking) on every round.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { loadavg, networkInterfaces, uptime } from 'node:os';
import { join } from 'node:path';
import si from 'systeminformation';
import { cpuLoadReader, cpuTemperatureReader, fsSizeReader, parseProcNetDev } from './linux-proc.js';
import { NVIDIA_SMI_FIELDS, type NvidiaSmiOutput, type Probe } from './probe.js';

function nvidiaSmiPath(platform: NodeJS.Platform): string {
  if (platform === 'win32') {
    const system32 = join(process.env['WINDIR'] ?? 'C:\\Windows', 'System32', 'nvidia-smi.exe');
    if (existsSync(system32)) return system32;
  }
  return 'nvidia-smi';
}

/** Runs nvidia-smi's CSV query; after one "not installed" it is never tried again. */
function createNvidiaSmi(platform: NodeJS.Platform): () => Promise<NvidiaSmiOutput> {
  const path = nvidiaSmiPath(platform);
  const args = [`--query-gpu=${NVIDIA_SMI_FIELDS.join(',')}`, '--format=csv,noheader,nounits'];
  let installed = true;
  return () =>
    new Promise((resolve) => {
      if (!installed) return resolve(null);
      execFile(path, args, { timeout: 5000, windowsHide: true }, (error, stdout) => {
        if ((error as NodeJS.ErrnoException | null)?.code === 'ENOENT') installed = false;
        resolve(error ? null : stdout);
      });
    });
}

export function createSystemProbe(platform: NodeJS.Platform = process.platform): Probe {
  const linux = platform === 'linux';
  const linuxLoad = cpuLoadReader();
  return {
    currentLoad: linux ? linuxLoad : () => si.currentLoad(),
    cpuTemperature: linux ? cpuTemperatureReader() : () => si.cpuTemperature(),
    mem: () => si.mem(),
    fsSize: linux ? fsSizeReader() : () => si.fsSize(),
    networkStats: linux
      ? async () => parseProcNetDev(await readFile('/proc/net/dev', 'utf8'), new Set(Object.keys(networkInterfaces())))
      : () => si.networkStats('*'),
    graphics: () => si.graphics(),
    nvidiaSmi: createNvidiaSmi(platform),
    battery: () => si.battery(),
    // systeminformation's time() takes uptime from Node too, and runs `date` twice and `ls` for the time zone.
    time: () => Promise.resolve({ uptime: uptime() }),
    // Windows has no load average: Node reports [0, 0, 0] there, which would be a fake 0.
    loadavg: () => Promise.resolve(platform === 'win32' ? null : (loadavg() as [number, number, number])),
    staticInfo: async () => {
      const [osInfo, system, cpu] = await Promise.all([si.osInfo(), si.system(), si.cpu()]);
      return { osInfo: { ...osInfo }, system: { ...system }, cpu: { ...cpu } };
    },
  };
}
