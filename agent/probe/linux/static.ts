/**
 * The machine's maker, model and operating system on Linux, from the files systeminformation reads
 * for them when it runs without root (as the agent's service does): the DMI table in sysfs and the
 * release files. Read once at start, for the Home Assistant device block. Same values as
 * systeminformation's osInfo() and system() there, without its processes (dmidecode, dmesg, cat) and
 * without loading it; on a Raspberry Pi (which systeminformation names from its own tables) the
 * caller asks systeminformation instead.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { arch, hostname, release as kernelRelease } from 'node:os';
import { join } from 'node:path';
import type { StaticInfo } from '../index.js';

export interface LinuxStaticRoots {
  /** /etc, /usr/lib, /sys/devices/virtual/dmi/id, / (for /.dockerenv), /proc/cpuinfo and the kernel release, in tests. */
  readonly etc?: string;
  readonly usrLib?: string;
  readonly dmi?: string;
  readonly root?: string;
  readonly kernel?: string;
  readonly cpuinfo?: string;
}

const read = (path: string): string => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
};

/** systeminformation's `cat /etc/*-release; cat /usr/lib/os-release; cat /etc/openwrt_release`: later keys win. */
export function osRelease(etc = '/etc', usrLib = '/usr/lib'): Record<string, string> {
  let names: string[] = [];
  try {
    names = readdirSync(etc)
      .filter((n) => n.endsWith('-release'))
      .sort();
  } catch {
    // no /etc
  }
  const text = [...names.map((n) => join(etc, n)), join(usrLib, 'os-release'), join(etc, 'openwrt_release')].map(read).join('\n');
  const values: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (line.includes('=')) values[(line.split('=')[0] ?? '').trim().toUpperCase()] = (line.split('=')[1] ?? '').trim();
  }
  return values;
}

/** Distribution and release, by systeminformation's rules (the release from PRETTY_NAME or VERSION, without its codename). */
export function distroOf(release: Readonly<Record<string, string>>): { distro: string; release: string; codename: string } {
  const unquote = (s: string | undefined): string => (s ?? '').replace(/"/g, '');
  const distro = unquote(release['DISTRIB_ID'] || release['NAME'] || 'unknown');
  let version = unquote(release['VERSION']);
  let codename = unquote(release['DISTRIB_CODENAME'] || release['VERSION_CODENAME']);
  const pretty = unquote(release['PRETTY_NAME']);
  if (pretty.startsWith(`${distro} `)) version = pretty.replace(`${distro} `, '').trim();
  if (version.includes('(')) {
    codename = (version.split('(')[1] ?? '').replace(/[()]/g, '').trim();
    version = (version.split('(')[0] ?? '').trim();
  }
  return { distro, release: unquote(version || release['DISTRIB_RELEASE'] || release['VERSION_ID'] || 'unknown'), codename };
}

/** systeminformation's cleanDefaults: firmware placeholders become empty. */
function clean(value: string): string {
  const v = value.trim();
  const lower = v.toLowerCase();
  return lower.includes('o.e.m.') || lower.includes('default string') || lower === 'default' ? '' : v;
}

/** A line of /proc/cpuinfo (`Hardware`, `Revision`), as systeminformation finds it: the first whose name starts so. */
function cpuinfoValue(cpuinfo: string, name: string): string {
  const line = cpuinfo.split('\n').find((l) => l.toLowerCase().startsWith(name));
  return line?.slice(line.indexOf(':') + 1).trim() ?? '';
}

const PI_SOCS = ['BCM2708', 'BCM2709', 'BCM2710', 'BCM2711', 'BCM2712', 'BCM2835', 'BCM2836', 'BCM2837', 'BCM2837B0'];

/**
 * Maker, model and version as systeminformation's system() gives them to a process without root:
 * DMI from sysfs ("Computer" when it names no model), "Docker Container" in a container, WSL by its
 * kernel, and without DMI the SoC named in /proc/cpuinfo. Undefined on a Raspberry Pi, whose model
 * systeminformation decodes from its own revision tables. (As root, systeminformation reads
 * dmidecode first: the same table. It also calls a DMI-less machine whose dmesg names a hypervisor
 * a "Virtual machine"; dmesg is root's on most distributions, so the agent's service never sees that.)
 */
export function systemOf(
  dmi = '/sys/devices/virtual/dmi/id',
  root = '/',
  kernel = kernelRelease(),
  cpuinfo = read('/proc/cpuinfo'),
): Record<string, string> | undefined {
  const field = (name: string): string => clean(read(join(dmi, name)));
  let manufacturer = field('sys_vendor');
  let model = field('product_name') || 'Computer';
  let version = field('product_version');
  const k = kernel.toLowerCase();
  if (k.includes('microsoft') || k.endsWith('wsl2')) {
    manufacturer = 'Microsoft';
    model = 'WSL';
    version = Number.parseFloat(k) < 4.19 ? '1' : '2';
  }
  if (existsSync(join(root, '.dockerenv')) || existsSync(join(root, '.dockerinit'))) model = 'Docker Container';
  if (manufacturer === '' && model === 'Computer' && version === '') {
    if (PI_SOCS.includes(cpuinfoValue(cpuinfo, 'hardware')) || cpuinfoValue(cpuinfo, 'model').includes('Raspberry Pi')) return undefined;
    model = cpuinfoValue(cpuinfo, 'hardware').toUpperCase();
    version = cpuinfoValue(cpuinfo, 'revision').toLowerCase();
  }
  return { manufacturer, model, version };
}

/** The static facts of this Linux machine, or undefined where systeminformation must be asked (a Raspberry Pi). */
export function linuxStaticInfo(roots: LinuxStaticRoots = {}): StaticInfo | undefined {
  const cpuinfo = read(roots.cpuinfo ?? '/proc/cpuinfo');
  const system = systemOf(roots.dmi, roots.root, roots.kernel, cpuinfo);
  if (!system) return undefined;
  const { distro, release, codename } = distroOf(osRelease(roots.etc, roots.usrLib));
  return {
    osInfo: { platform: 'linux', distro, release, codename, kernel: roots.kernel ?? kernelRelease(), arch: arch(), hostname: hostname() },
    system,
    cpu: { brand: cpuinfoValue(cpuinfo, 'model name'), cores: (cpuinfo.match(/^processor\s*:/gm) ?? []).length },
  };
}
