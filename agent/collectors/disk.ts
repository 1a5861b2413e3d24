import { instanceSlug } from '../../protocol/index.js';
import { add, isNumber, uniqueSlugs, type CollectorFactory, type Reading } from '../collector.js';
import type { Filesystem } from '../probe/index.js';

/** Filesystem types that hold no user data (memory, kernel, images, container layers). */
const VIRTUAL_TYPES = new Set([
  'tmpfs',
  'devtmpfs',
  'ramfs',
  'squashfs',
  'overlay',
  'overlayfs',
  'aufs',
  'proc',
  'sysfs',
  'cgroup',
  'cgroup2',
  'devpts',
  'autofs',
  'nsfs',
  'efivarfs',
  'tracefs',
  'debugfs',
  'securityfs',
  'fuse.snapfuse',
  'fuse.lxcfs',
  'iso9660',
  'udf',
  'devfs',
  'nullfs',
  'map',
  'zram',
]);

/** Mount points that are not where people keep data. */
const VIRTUAL_MOUNTS = [
  /^\/(proc|sys|dev|run|snap)(\/|$)/,
  /^\/var\/lib\/(docker|containers|kubelet)\//,
  /^\/var\/snap\//,
  // macOS: the sealed system volume's helpers; /System/Volumes/Data holds the user's data.
  /^\/System\/Volumes\/(?!Data$)/,
  /^\/private\/var\/vm$/,
];

/** A real filesystem: a data-holding type, a real mount point, a size. */
export function isRealFilesystem(fs: Filesystem): boolean {
  if (!(fs.size > 0) || VIRTUAL_TYPES.has(fs.type.toLowerCase())) return false;
  return !VIRTUAL_MOUNTS.some((pattern) => pattern.test(fs.mount));
}

/**
 * Usage of each real filesystem, named by mount point: `/` → `disk_root_usage`,
 * `/home` → `disk_home_usage`, `C:` → `disk_c_usage`. A device mounted twice counts once.
 */
/**
 * With a host mount prefix (`/hostfs`), only filesystems under it count, renamed to their host
 * paths (`/hostfs` → `/`, `/hostfs/home` → `/home`); the container's own mounts are left out.
 */
export function hostView(filesystems: readonly Filesystem[], prefix: string | undefined): Filesystem[] {
  if (!prefix) return [...filesystems];
  return filesystems
    .filter((fs) => fs.mount === prefix || fs.mount.startsWith(`${prefix}/`))
    .map((fs) => ({ ...fs, mount: fs.mount === prefix ? '/' : fs.mount.slice(prefix.length) }));
}

export const disk: CollectorFactory = ({ probe, hostMountPrefix }) => ({
  name: 'disk',
  templates: ['disk_{name}_usage', 'disk_{name}_used', 'disk_{name}_free'],
  async collect() {
    const seen = new Set<string>();
    const real = hostView(await probe.fsSize(), hostMountPrefix).filter((fs) => {
      if (!isRealFilesystem(fs) || seen.has(fs.fs)) return false;
      seen.add(fs.fs);
      return true;
    });
    const slugs = uniqueSlugs(
      real.map((fs) => fs.mount),
      instanceSlug,
    );
    const readings: Reading[] = [];
    for (const fs of real) {
      const name = slugs.get(fs.mount);
      const usage = isNumber(fs.use) ? fs.use : (fs.used / fs.size) * 100;
      add(readings, 'disk_{name}_usage', Math.min(100, Math.max(0, usage)), name);
      add(readings, 'disk_{name}_used', fs.used, name, 0);
      add(readings, 'disk_{name}_free', fs.available, name, 0);
    }
    return readings;
  },
});
