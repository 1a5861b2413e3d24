import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Reading } from '../../agent/collector.js';
import { collectors } from '../../agent/collectors/index.js';
import { hostView, isRealFilesystem } from '../../agent/collectors/disk.js';
import { parseNvidiaSmi } from '../../agent/collectors/gpu.js';
import { ReplayProbe, type Probe, type Recording } from '../../agent/probe/index.js';
import { Sampler } from '../../agent/sampler.js';
import { resolveMetric } from '../../protocol/index.js';
import { captureLogger } from '../harness/logs.js';

const MIB = 1024 * 1024;
const fixture = (name: string): Recording => JSON.parse(readFileSync(new URL(`../fixtures/machines/${name}.json`, import.meta.url), 'utf8')) as Recording;

/** Primes at t=0, samples at t=1000 ms, as the agent does. */
async function sample(probe: Probe): Promise<{ values: Record<string, number>; logs: ReturnType<typeof captureLogger>['lines'] }> {
  let now = 0;
  const { logger, lines } = captureLogger();
  const list = Object.values(collectors).map((f) => f({ probe, monotonicMs: () => now }));
  const sampler = new Sampler(list, logger, { timeoutMs: 2000 });
  await sampler.prime();
  now = 1000;
  const readings: Reading[] = await sampler.round();
  return { values: Object.fromEntries(readings.map((r) => [r.metric, r.value])), logs: lines };
}

describe('collectors on recorded machines', () => {
  it('linux workstation with 2 NVIDIA GPUs and an iGPU', async () => {
    const rec = fixture('linux-2gpu-workstation');
    const [r0, r1] = [rec.rounds[0]!, rec.rounds[1]!];
    const { values } = await sample(new ReplayProbe(rec));
    const enp0 = r0.networkStats.find((n) => n.iface === 'enp14s0')!;
    const enp1 = r1.networkStats.find((n) => n.iface === 'enp14s0')!;
    expect(values).toMatchObject({
      cpu_temp: 51.9,
      gpu0_temp: 43,
      gpu0_usage: 0, // an idle GPU reports 0, which systeminformation's graphics() drops
      gpu0_mem_used: 28812 * MIB,
      gpu0_mem_usage: 88.36,
      gpu0_power: 99,
      gpu0_fan: 41,
      gpu1_temp: 50,
      gpu1_usage: 0,
      gpu1_power: 70,
      gpu1_fan: 31,
      disk_root_usage: r1.fsSize.find((f) => f.mount === '/')!.use,
      disk_boot_usage: r1.fsSize.find((f) => f.mount === '/boot')!.use,
      disk_boot_efi_free: r1.fsSize.find((f) => f.mount === '/boot/efi')!.available,
      net_enp14s0_rx: enp1.rx_bytes - enp0.rx_bytes,
      net_enp14s0_tx: enp1.tx_bytes - enp0.tx_bytes,
      load1: r1.loadavg![0],
      load15: r1.loadavg![2],
      uptime: Math.round(r1.time.uptime),
      mem_usage: Math.round(((r1.mem.total - r1.mem.available) / r1.mem.total) * 10_000) / 100,
      swap_used: r1.mem.swapused,
    });
    const names = Object.keys(values);
    expect(names.filter((n) => n.startsWith('gpu2'))).toEqual([]); // the iGPU reports nothing live
    expect(names.filter((n) => n.startsWith('disk_') && n.endsWith('_usage')).sort()).toEqual(['disk_boot_efi_usage', 'disk_boot_usage', 'disk_root_usage']);
    expect(names.filter((n) => n.startsWith('net_')).sort()).toEqual(['net_enp14s0_rx', 'net_enp14s0_tx']); // no lo, no docker0
    expect(names).not.toContain('cpu_temp_max'); // k10temp reports no per-core temperatures
    expect(names.some((n) => n.startsWith('battery'))).toBe(false);
  });

  it('windows laptop on battery, GPU through nvidia-smi.exe', async () => {
    const rec = fixture('windows-laptop');
    const { values } = await sample(new ReplayProbe(rec));
    expect(values).toMatchObject({
      cpu_temp: 28.8,
      cpu_temp_max: 29.8,
      gpu0_temp: 48,
      gpu0_usage: 0,
      gpu0_mem_used: 0,
      gpu0_mem_usage: 0,
      gpu0_power: 1.78,
      battery_level: 44,
      battery_charging: 0,
      disk_c_usage: 60.44,
    });
    const names = Object.keys(values);
    expect(names).not.toContain('gpu0_fan'); // [N/A] on a laptop GPU
    expect(names.filter((n) => n.startsWith('load'))).toEqual([]); // no load average on Windows
    expect(names.filter((n) => n.endsWith('_usage') && n.startsWith('disk_')).sort()).toEqual(['disk_c_usage', 'disk_d_usage']);
    expect(names.filter((n) => n.startsWith('net_')).sort()).toEqual(['net_ethernet_rx', 'net_ethernet_tx', 'net_wi_fi_rx', 'net_wi_fi_tx']);
  });

  it('linux laptop: per-core temperatures, battery, a GPU without nvidia-smi', async () => {
    const rec = fixture('linux-laptop');
    const { values, logs } = await sample(new ReplayProbe(rec));
    expect(values).toMatchObject({ cpu_temp: 46, cpu_temp_max: 46, battery_level: 100, battery_charging: 0 });
    expect(Object.keys(values).some((n) => n.startsWith('gpu'))).toBe(false);
    expect(logs).toContainEqual(expect.objectContaining({ collector: 'gpu', msg: 'not available on this machine, not published' }));
  });

  it('every reading is a catalog metric within its range', async () => {
    for (const name of ['linux-2gpu-workstation', 'windows-laptop', 'linux-laptop']) {
      const { values } = await sample(new ReplayProbe(fixture(name)));
      for (const [metric, value] of Object.entries(values)) {
        const spec = resolveMetric(metric)?.spec;
        expect(spec, `${name}: ${metric}`).toBeDefined();
        expect(value).toBeGreaterThanOrEqual(spec!.min);
        expect(value).toBeLessThanOrEqual(spec!.max);
      }
    }
  });
});

describe('sampler', () => {
  it('switches off hardware the machine lacks and lists it once', async () => {
    const rec = fixture('linux-laptop');
    const replay = new ReplayProbe(rec);
    let graphicsCalls = 0;
    const probe: Probe = { ...replay, graphics: () => (graphicsCalls++, replay.graphics()) };
    const { logger, lines } = captureLogger();
    const sampler = new Sampler(
      Object.values(collectors).map((f) => f({ probe, monotonicMs: () => 0 })),
      logger,
      { timeoutMs: 2000 },
    );
    await sampler.prime();
    for (let i = 0; i < 3; i++) await sampler.round();
    expect(graphicsCalls).toBe(2); // prime and first round, then never again
    expect(lines.filter((l) => l['collector'] === 'gpu')).toHaveLength(1);
  });

  it('keeps publishing the rest when a collector fails or hangs, and logs without flooding', async () => {
    const replay = new ReplayProbe(fixture('linux-laptop'));
    const probe: Probe = {
      ...replay,
      fsSize: () => Promise.reject(new Error('mount table unreadable')),
      battery: () => new Promise(() => undefined),
    };
    const { logger, lines } = captureLogger();
    const sampler = new Sampler(
      Object.values(collectors).map((f) => f({ probe, monotonicMs: () => 0 })),
      logger,
      { timeoutMs: 100 },
    );
    const rounds = [];
    for (let i = 0; i < 3; i++) rounds.push(await sampler.round());
    for (const readings of rounds) {
      const names = readings.map((r) => r.metric);
      expect(names).toContain('cpu_usage');
      expect(names.some((n) => n.startsWith('disk_'))).toBe(false);
      expect(names.some((n) => n.startsWith('battery'))).toBe(false);
    }
    expect(lines.filter((l) => l.msg === 'collector failed, skipped')).toHaveLength(1);
    expect(lines.filter((l) => l.msg === 'collector timed out, skipped')).toHaveLength(1);
  });
});

describe('nvidia-smi output', () => {
  it('reads every GPU, keeps zeros and drops what the card cannot report', () => {
    const csv = [
      '535.183.01, 0x160310DE, NVIDIA H100 80GB HBM3, 00000000:19:00.0, [N/A], 81559, 0, 81004, 0, 0, 31, 29, 69.88, 700.00, 345, 2619',
      '535.183.01, 0x160310DE, NVIDIA H100 80GB HBM3, 00000000:3B:00.0, [N/A], 81559, 40960, 40599, 97, 45, 62, 55, 512.30, 700.00, 1980, 2619',
      'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.',
      '',
    ].join('\n');
    expect(parseNvidiaSmi(csv)).toEqual([
      { temperatureGpu: 31, utilizationGpu: 0, memoryTotal: 81559, memoryUsed: 0, powerDraw: 69.88, fanSpeed: undefined },
      { temperatureGpu: 62, utilizationGpu: 97, memoryTotal: 81559, memoryUsed: 40960, powerDraw: 512.3, fanSpeed: undefined },
    ]);
  });

  it.each(['[Not Supported]', '[Unknown Error]', 'N/A', '[N/A]'])('treats %s as not reported', (na) => {
    const [gpu] = parseNvidiaSmi(`1, 0x0, GPU, 0:1:0.0, ${na}, 100, 1, 99, ${na}, 0, ${na}, N/A, ${na}, 0, 0, 0`);
    expect(gpu).toMatchObject({ fanSpeed: undefined, utilizationGpu: undefined, temperatureGpu: undefined, powerDraw: undefined });
  });
});

describe('filesystems', () => {
  const fs = (mount: string, type = 'ext4', size = 1e9) => ({ fs: '/dev/x', type, size, used: 1, available: 1, use: 1, mount });
  it.each([
    [fs('/'), true],
    [fs('/home'), true],
    [fs('C:', 'NTFS'), true],
    [fs('/System/Volumes/Data', 'apfs'), true],
    [fs('/System/Volumes/VM', 'apfs'), false],
    [fs('/snap/core/1', 'squashfs'), false],
    [fs('/run/user/1000', 'tmpfs'), false],
    [fs('/sys/firmware/efi/efivars', 'efivarfs'), false],
    [fs('/var/lib/docker/overlay2/abc/merged', 'overlay'), false],
    [fs('/mnt/empty', 'ext4', 0), false],
  ])('%j real: %s', (f, real) => {
    expect(isRealFilesystem(f)).toBe(real);
  });
});

describe('filesystems seen from a container', () => {
  const fs = (mount: string, device = '/dev/sda1') => ({ fs: device, type: 'ext4', size: 1e9, used: 1, available: 1, use: 1, mount });
  it("reports the host's filesystems by their host paths, and only those", () => {
    const seen = [fs('/', 'overlay'), fs('/hostfs'), fs('/hostfs/home', '/dev/sda2'), fs('/etc/hosts', '/dev/sda1'), fs('/hostfs-other', '/dev/sdb1')];
    expect(hostView(seen, '/hostfs').map((f) => f.mount)).toEqual(['/', '/home']);
    expect(hostView(seen, undefined)).toHaveLength(5);
  });
});
