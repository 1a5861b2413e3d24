/**
 * On Linux the agent no longer loads systeminformation: memory, the battery and the machine's maker,
 * model and OS come from /proc and /sys. They must read what systeminformation read, so that
 * published values and Home Assistant device blocks stay the same: checked against its formulas on
 * recorded files, and against systeminformation itself on this machine.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import si from 'systeminformation';
import { describe, expect, it } from 'vitest';
import { parseBatteryUevent } from '../../agent/probe/linux/battery.js';
import { parseMeminfo } from '../../agent/probe/linux/proc.js';
import { distroOf, linuxStaticInfo, osRelease, systemOf } from '../../agent/probe/linux/static.js';
import { createSystemProbe } from '../../agent/probe/system.js';
import { tempDir } from '../harness/process.js';

const KIB = 1024;

async function files(tree: Record<string, string>): Promise<string> {
  const root = await tempDir('linux-readers');
  for (const [path, content] of Object.entries(tree)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
}

describe('memory from /proc/meminfo', () => {
  it('available is MemAvailable; without it (kernels before 3.14), free + buffers + cache + slab', () => {
    const modern =
      'MemTotal:       24684084 kB\nMemFree:        23601324 kB\nMemAvailable:   23932320 kB\nBuffers:           14984 kB\nCached:           557336 kB\nSwapCached:            0 kB\nSwapTotal:       8388604 kB\nSwapFree:        8126460 kB\nSlab:             183040 kB\n';
    expect(parseMeminfo(modern)).toEqual({ total: 24684084 * KIB, available: 23932320 * KIB, swaptotal: 8388604 * KIB, swapused: (8388604 - 8126460) * KIB });
    const old =
      'MemTotal: 2048000 kB\nMemFree: 1000000 kB\nBuffers: 1000 kB\nCached: 20000 kB\nSwapCached: 5 kB\nSlab: 300 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n';
    expect(parseMeminfo(old)).toEqual({ total: 2048000 * KIB, available: (1000000 + 1000 + 20000 + 300) * KIB, swaptotal: 0, swapused: 0 });
  });

  it('agrees with systeminformation on this machine', async () => {
    const [mine, theirs] = await Promise.all([createSystemProbe('linux').mem(), si.mem()]);
    expect(mine.total).toBe(theirs.total);
    expect(mine.swaptotal).toBe(theirs.swaptotal);
    expect(Math.abs(mine.available - theirs.available)).toBeLessThan(256 * 1024 * 1024);
  });
});

describe('the battery from sysfs', () => {
  it('reads the level and charging state of an energy-counting battery (ThinkPad BAT0)', () => {
    const uevent = [
      'POWER_SUPPLY_NAME=BAT0',
      'POWER_SUPPLY_TYPE=Battery',
      'POWER_SUPPLY_STATUS=Charging',
      'POWER_SUPPLY_PRESENT=1',
      'POWER_SUPPLY_TECHNOLOGY=Li-poly',
      'POWER_SUPPLY_CYCLE_COUNT=312',
      'POWER_SUPPLY_VOLTAGE_MIN_DESIGN=11580000',
      'POWER_SUPPLY_VOLTAGE_NOW=12631000',
      'POWER_SUPPLY_POWER_NOW=23912000',
      'POWER_SUPPLY_ENERGY_FULL_DESIGN=57000000',
      'POWER_SUPPLY_ENERGY_FULL=48910000',
      'POWER_SUPPLY_ENERGY_NOW=36160000',
      'POWER_SUPPLY_CAPACITY=73',
      'POWER_SUPPLY_CAPACITY_LEVEL=Normal',
      'POWER_SUPPLY_MODEL_NAME=5B10W13930',
      'POWER_SUPPLY_MANUFACTURER=SMP',
      '',
    ].join('\n');
    expect(parseBatteryUevent(uevent)).toEqual({ hasBattery: true, percent: 73, isCharging: true });
  });

  it('computes the level from charge counters when the driver gives no CAPACITY', () => {
    const uevent = 'POWER_SUPPLY_STATUS=Discharging\nPOWER_SUPPLY_CHARGE_FULL=4000000\nPOWER_SUPPLY_CHARGE_NOW=1000000\nPOWER_SUPPLY_VOLTAGE_NOW=7600000\n';
    expect(parseBatteryUevent(uevent)).toEqual({ hasBattery: true, percent: 25, isCharging: false });
  });

  it('a desktop has none', async () => {
    expect(parseBatteryUevent(undefined)).toEqual({ hasBattery: false, percent: 0, isCharging: false });
    const root = await files({ 'AC/online': '1\n' });
    const { batteryReader } = await import('../../agent/probe/linux/battery.js');
    expect(await batteryReader(root)()).toEqual({ hasBattery: false, percent: 0, isCharging: false });
  });
});

describe('maker, model and operating system', () => {
  it('reads the distribution and release as systeminformation does (later release files win, the codename cut off)', async () => {
    const root = await files({
      'etc/lsb-release': 'DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=24.04\nDISTRIB_CODENAME=noble\nDISTRIB_DESCRIPTION="Ubuntu 24.04.4 LTS"\n',
      'usr/lib/os-release':
        'PRETTY_NAME="Ubuntu 24.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\nVERSION="24.04.4 LTS (Noble Numbat)"\nVERSION_CODENAME=noble\nID=ubuntu\n',
    });
    expect(distroOf(osRelease(join(root, 'etc'), join(root, 'usr/lib')))).toEqual({ distro: 'Ubuntu', release: '24.04.4 LTS', codename: 'noble' });
    const debian = await files({
      'usr/lib/os-release':
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n',
    });
    expect(distroOf(osRelease(join(debian, 'etc'), join(debian, 'usr/lib')))).toEqual({ distro: 'Debian GNU/Linux', release: '12', codename: 'bookworm' });
  });

  it('reads maker and model from DMI, and knows WSL, containers and SoC boards as systeminformation does', async () => {
    const dmi = await files({ sys_vendor: 'Gigabyte Technology Co., Ltd.\n', product_name: 'B850 AI TOP\n', product_version: 'Default string\n' });
    const root = await files({});
    expect(systemOf(dmi, root, '6.8.0-45-generic', '')).toEqual({ manufacturer: 'Gigabyte Technology Co., Ltd.', model: 'B850 AI TOP', version: '' });
    expect(systemOf(dmi, root, '5.15.153.1-microsoft-standard-WSL2', '')).toEqual({ manufacturer: 'Microsoft', model: 'WSL', version: '2' });
    const docker = await files({ '.dockerenv': '' });
    expect(systemOf(join(root, 'none'), docker, '6.8.0', '')).toEqual({ manufacturer: '', model: 'Docker Container', version: '' });
    const rockchip = 'processor\t: 0\nBogoMIPS\t: 48.00\nHardware\t: Rockchip RK3588\nRevision\t: 0000\n';
    expect(systemOf(join(root, 'none'), root, '6.1.0', rockchip)).toEqual({ manufacturer: '', model: 'ROCKCHIP RK3588', version: '0000' });
    // A Raspberry Pi: systeminformation's revision tables name it, so it is asked.
    expect(
      systemOf(join(root, 'none'), root, '6.6.31', 'Hardware\t: BCM2835\nRevision\t: c03114\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n'),
    ).toBeUndefined();
  });

  it('agrees with systeminformation on this machine in everything the Home Assistant device block shows', async () => {
    const mine = linuxStaticInfo();
    const [osInfo, system] = await Promise.all([si.osInfo(), si.system()]);
    expect(mine).toBeDefined();
    expect(mine?.osInfo).toMatchObject({ platform: osInfo.platform, distro: osInfo.distro, release: osInfo.release });
    expect(mine?.system).toEqual({ manufacturer: system.manufacturer, model: system.model, version: system.version });
  });
});
