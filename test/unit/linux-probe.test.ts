/**
 * The Linux probe reads CPU ticks and network counters from /proc itself: systeminformation would
 * start processes for them (through a shell, with execSync) on every round.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cpuLoadReader, fsSizeReader, parseProcMounts, parseProcNetDev, parseProcStat } from '../../agent/probe/linux/proc.js';
import { cpuTemperatureReader } from '../../agent/probe/linux/sensors.js';
import { createSystemProbe } from '../../agent/probe/system.js';
import { CLI } from '../harness/cli.js';
import { tempDir } from '../harness/process.js';

const NET_DEV = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 1858590785 7300021    0    0    0     0          0         0 1858590785 7300021    0    0    0     0       0          0
  ifb0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth0: 98765432101   81234    0    0    0     0          0         0 12345678901   71234    0    0    0     0       0          0
wlp2s0:  5000 10 0 0 0 0 0 0 7000 12 0 0 0 0 0 0
`;

describe('/proc parsers', () => {
  it('reads byte counters of the interfaces that have an address, and only those', () => {
    expect(parseProcNetDev(NET_DEV, new Set(['lo', 'eth0', 'wlp2s0']))).toEqual([
      { iface: 'lo', rx_bytes: 1858590785, tx_bytes: 1858590785 },
      { iface: 'eth0', rx_bytes: 98765432101, tx_bytes: 12345678901 },
      { iface: 'wlp2s0', rx_bytes: 5000, tx_bytes: 7000 },
    ]);
  });

  it('computes CPU usage between two calls, iowait counted as idle and steal as busy', async () => {
    expect(parseProcStat('cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n')).toEqual({ busy: 150, total: 1000 });
    expect(parseProcStat('intr 1 2 3\n')).toBeUndefined();
    const texts = ['cpu  100 0 50 800 50 0 0 0 0 0\n', 'cpu  160 0 70 900 60 0 0 10 0 0\n'];
    const read = cpuLoadReader(() => Promise.resolve(texts.shift() ?? ''));
    expect(await read()).toEqual({ currentLoad: 15 }); // since boot: 150 of 1,000 ticks
    expect(await read()).toEqual({ currentLoad: 45 }); // then: 90 busy of 200 (steal 10 busy, iowait 10 idle)
  });
});

describe('/proc/mounts and statfs', () => {
  const MOUNTS = [
    'sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0',
    'proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0',
    '/dev/nvme0n1p2 / ext4 rw,relatime 0 0',
    'cgroup2 /sys/fs/cgroup cgroup2 rw 0 0',
    '/dev/sdb1 /media/My\\040Disk vfat rw 0 0',
    'nas:/export /mnt/nas nfs4 rw 0 0',
    '',
  ].join('\n');

  it('lists the mounts that can hold data, names decoded', () => {
    expect(parseProcMounts(MOUNTS)).toEqual([
      { device: '/dev/nvme0n1p2', mount: '/', type: 'ext4' },
      { device: '/dev/sdb1', mount: '/media/My Disk', type: 'vfat' },
      { device: 'nas:/export', mount: '/mnt/nas', type: 'nfs4' },
    ]);
  });

  it('sizes each as df does, and leaves out one that cannot be read', async () => {
    const stat = (path: string) =>
      path === '/mnt/nas' ? Promise.reject(new Error('EIO')) : Promise.resolve({ bsize: 4096, blocks: 1000, bfree: 300, bavail: 250 });
    expect(await fsSizeReader(() => Promise.resolve(MOUNTS), stat)()).toEqual([
      { fs: '/dev/nvme0n1p2', type: 'ext4', size: 4_096_000, used: 2_867_200, available: 1_024_000, use: (100 * 700) / 950, mount: '/' },
      { fs: '/dev/sdb1', type: 'vfat', size: 4_096_000, used: 2_867_200, available: 1_024_000, use: (100 * 700) / 950, mount: '/media/My Disk' },
    ]);
  });
});

describe('CPU temperatures from sysfs', () => {
  /** A /sys/class of the given files (path → content), in a temp folder. */
  async function sysfs(files: Record<string, string>): Promise<string> {
    const root = await tempDir('sysfs');
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(join(root, path, '..'), { recursive: true });
      writeFileSync(join(root, path), `${content}\n`);
    }
    return root;
  }

  it.each([
    [
      'Intel coretemp: the package, each core, the hottest',
      {
        'hwmon/hwmon0/temp1_input': '27800',
        'hwmon/hwmon1/temp1_label': 'Package id 0',
        'hwmon/hwmon1/temp1_input': '45000',
        'hwmon/hwmon1/temp2_label': 'Core 0',
        'hwmon/hwmon1/temp2_input': '43000',
        'hwmon/hwmon1/temp3_label': 'Core 1',
        'hwmon/hwmon1/temp3_input': '47000',
      },
      { main: 45, cores: [43, 47], max: 47 },
    ],
    [
      'AMD k10temp: Tctl, before Tccd1; an NVMe composite is no CPU',
      {
        'hwmon/hwmon1/temp1_label': 'Composite',
        'hwmon/hwmon1/temp1_input': '38850',
        'hwmon/hwmon2/temp1_label': 'Tctl',
        'hwmon/hwmon2/temp1_input': '61250',
        'hwmon/hwmon2/temp3_label': 'Tccd1',
        'hwmon/hwmon2/temp3_input': '55500',
      },
      { main: 61.3, cores: [], max: 61.3 },
    ],
    [
      'older AMD kernels: Tdie',
      { 'hwmon/hwmon2/temp1_label': 'Tctl', 'hwmon/hwmon2/temp1_input': '70000', 'hwmon/hwmon2/temp2_label': 'Tdie', 'hwmon/hwmon2/temp2_input': '60000' },
      { main: 60, cores: [], max: 60 },
    ],
    [
      'Raspberry Pi: the cpu-thermal zone',
      { 'thermal/thermal_zone0/type': 'cpu-thermal', 'thermal/thermal_zone0/temp': '48312' },
      { main: 48.3, cores: [], max: 48.3 },
    ],
    ['a VM without sensors', {}, { main: null, cores: [], max: null }],
  ])('%s', async (_name, files, expected) => {
    expect(await cpuTemperatureReader(await sysfs(files))()).toEqual(expected);
  });
});

describe('on this Linux machine', () => {
  it("gives the kernel's counters and a usage within 0–100", async () => {
    const probe = createSystemProbe('linux');
    const stats = await probe.networkStats();
    expect(stats.length).toBeGreaterThan(0);
    for (const s of stats) {
      const rx = Number(await readFile(`/sys/class/net/${s.iface}/statistics/rx_bytes`, 'utf8'));
      expect(rx).toBeGreaterThanOrEqual(s.rx_bytes);
      expect(rx - s.rx_bytes).toBeLessThan(1e9);
    }
    await probe.currentLoad();
    await new Promise((r) => setTimeout(r, 200));
    const load = (await probe.currentLoad()).currentLoad;
    expect(load).toBeGreaterThanOrEqual(0);
    expect(load).toBeLessThanOrEqual(100);
    expect((await probe.time()).uptime).toBeGreaterThan(0);
    // The root filesystem as df reports it (KiB; the disk may change a little between the two reads).
    const root = (await probe.fsSize()).find((f) => f.mount === '/');
    const df = await new Promise<string>((resolve, reject) => execFile('df', ['-kPT', '/'], (error, stdout) => (error ? reject(error) : resolve(stdout))));
    const [, , size, used, available] = (df.trim().split('\n')[1] ?? '').split(/\s+/).map(Number);
    expect(root?.size).toBe((size ?? 0) * 1024);
    expect(Math.abs((root?.used ?? 0) - (used ?? 0) * 1024)).toBeLessThan(64 * 1024 * 1024);
    expect(Math.abs((root?.available ?? 0) - (available ?? 0) * 1024)).toBeLessThan(64 * 1024 * 1024);
  });

  it('starts no process for CPU usage and temperature, network counters, filesystems or uptime (strace of `agent --print`)', async () => {
    const dir = await tempDir('strace');
    const trace = join(dir, 'trace');
    await new Promise<void>((resolve, reject) =>
      execFile(
        'strace',
        ['-f', '-s', '4096', '-e', 'trace=execve', '-o', trace, process.execPath, CLI, 'agent', '--print'],
        { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' } },
        (error) => (error ? reject(error) : resolve()),
      ),
    );
    const started = readFileSync(trace, 'utf8')
      .split('\n')
      .filter((l) => l.includes('execve(') && !l.includes('ENOENT'));
    // The trace works: it sees node itself.
    expect(started.some((l) => l.includes(CLI))).toBe(true);
    for (const gone of ['/proc/stat', '/statistics/', 'date +%', '/etc/localtime', '"df"', '/proc/mounts', 'thermal_zone', 'hwmon', '"sensors"']) {
      expect(
        started.filter((l) => l.includes(gone)),
        gone,
      ).toEqual([]);
    }
  });
});
