/**
 * The compose project under test: the shipped docker-compose.yml, unchanged, with the stand-ins'
 * override, run from a temp directory that holds copies of what the stack mounts (mosquitto/,
 * influxdb/, grafana/) and its .env, so that `enrol` writing mosquitto/passwd never touches the checkout.
 */
import { randomBytes } from 'node:crypto';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ROOT } from '../harness/cli.js';
import { DOCKER_COMPOSE, exec, type Engine, type Exec } from '../harness/docker.js';
import { freePort, tempDir } from '../harness/process.js';

export const OVERRIDE = join(ROOT, 'test/stack/docker-compose.test.yml');
const MOUNTED = ['mosquitto', 'influxdb', 'grafana'];
const PORTS = ['MQTT_PORT', 'MQTT_TLS_PORT', 'MQTT_WS_PORT', 'INFLUX_PORT', 'GRAFANA_PORT', 'LIVE_PORT', 'AGENT_HTTP_PORT'];
const BINDS = ['MQTT_BIND', 'INFLUX_BIND', 'LIVE_BIND', 'GRAFANA_BIND'];

export interface Project {
  readonly name: string;
  readonly dir: string;
  /** `docker-compose <args>` for this project, as a user runs it from the project's directory. */
  compose(args: readonly string[], timeoutMs?: number): Promise<Exec>;
  env(): Promise<Record<string, string>>;
  /** Sets (or adds) one line `KEY=value` of .env, as a user edits it. */
  setEnv(key: string, value: string): Promise<void>;
  /** The container state of a service: running, exited (with its code) and health, or undefined if it has none. */
  state(service: string): Promise<ServiceState | undefined>;
  logs(service: string): Promise<string>;
}

export interface ServiceState {
  readonly status: string;
  readonly exitCode: number;
  readonly health?: string;
  /** How often Docker restarted it (restart: unless-stopped): a crash loop. */
  readonly restarts: number;
}

/** A password as the README says to make one: 18 random bytes, base64url (24 characters, no "$"). */
export const secret = (): string => randomBytes(18).toString('base64url');

/** .env from .env.example: every empty secret set, everything bound to loopback on free ports. */
async function fillEnv(): Promise<string> {
  const lines = (await readFile(join(ROOT, '.env.example'), 'utf8')).split('\n');
  const ports = new Map<string, number>();
  for (const key of PORTS) ports.set(key, await freePort());
  return lines
    .map((line) => {
      const [, key, value] = /^([A-Z0-9_]+)=(.*)$/.exec(line) ?? [];
      if (key === undefined) return line;
      if (ports.has(key)) return `${key}=${ports.get(key)}`;
      if (BINDS.includes(key)) return `${key}=127.0.0.1`;
      if (key === 'MQTT_PUBLIC_URL') return `${key}=mqtt://127.0.0.1:${ports.get('MQTT_PORT')}`;
      // The agent's login comes from `enrol`, later; every other empty value is a secret.
      if (value === '' && !key.startsWith('AGENT_')) return `${key}=${secret()}`;
      return line;
    })
    .join('\n');
}

/** What git would ship of a folder: its files, without those .gitignore leaves out (a developer's passwd, TLS keys). */
async function copyShipped(folder: string, into: string): Promise<void> {
  const files = await exec('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z', '--', folder], { cwd: ROOT });
  if (files.code !== 0) throw new Error(`git ls-files ${folder}: ${files.stderr}`);
  for (const file of files.stdout.split('\0').filter(Boolean)) {
    await mkdir(dirname(join(into, file)), { recursive: true });
    await cp(join(ROOT, file), join(into, file), { preserveTimestamps: true });
  }
  await mkdir(join(into, folder), { recursive: true });
}

export async function createProject(engine: Engine): Promise<Project> {
  const dir = await tempDir('stack');
  for (const folder of MOUNTED) await copyShipped(folder, dir);
  // Mosquitto 2.0 does not start without its include_dir, which git keeps by its README only.
  await mkdir(join(dir, 'mosquitto/conf.d'), { recursive: true });
  await writeFile(join(dir, '.env'), await fillEnv());
  const name = `hostpulse-stack-${randomBytes(4).toString('hex')}`;
  // docker-compose 1.29 builds with `docker build` from PATH (BuildKit: COMPOSE_DOCKER_CLI_BUILD):
  // /usr/bin first, so that it is docker.io's client, not another one in /usr/local/bin.
  const env: NodeJS.ProcessEnv = {
    ...engine.env,
    PATH: `/usr/bin:/usr/sbin:/bin:/sbin:${process.env['PATH'] ?? ''}`,
    COMPOSE_DOCKER_CLI_BUILD: '1',
    DOCKER_BUILDKIT: '1',
    HOSTPULSE_STACK_REPO: ROOT,
  };
  const base = ['-p', name, '-f', join(ROOT, 'docker-compose.yml'), '-f', OVERRIDE, '--project-directory', dir, '--profile', 'agent'];
  const compose = (args: readonly string[], timeoutMs = 300_000): Promise<Exec> => exec(DOCKER_COMPOSE, [...base, ...args], { env, cwd: dir, timeoutMs });
  const readEnv = async (): Promise<Record<string, string>> =>
    Object.fromEntries([...(await readFile(join(dir, '.env'), 'utf8')).matchAll(/^([A-Z0-9_]+)=(.*)$/gm)].map((m) => [m[1] as string, m[2] as string]));
  return {
    name,
    dir,
    compose,
    env: readEnv,
    async setEnv(key, value) {
      const text = await readFile(join(dir, '.env'), 'utf8');
      const line = new RegExp(`^${key}=.*$`, 'm');
      await writeFile(join(dir, '.env'), line.test(text) ? text.replace(line, `${key}=${value}`) : `${text}\n${key}=${value}\n`);
    },
    async state(service) {
      const id = (await compose(['ps', '-q', service], 60_000)).stdout.trim().split('\n')[0];
      if (!id) return undefined;
      const inspect = await engine.docker(['inspect', '--format', '{"state":{{json .State}},"restarts":{{.RestartCount}}}', id], { timeoutMs: 30_000 });
      if (inspect.code !== 0) return undefined;
      const { state, restarts } = JSON.parse(inspect.stdout) as { state: { Status: string; ExitCode: number; Health?: { Status: string } }; restarts: number };
      return { status: state.Status, exitCode: state.ExitCode, restarts, ...(state.Health ? { health: state.Health.Status } : {}) };
    },
    async logs(service) {
      const run = await compose(['logs', '--no-color', '--tail', '80', service], 60_000);
      return run.stdout + run.stderr;
    },
  };
}

/** Restarts after which a service is taken to be crash-looping: waiting longer would not help. */
const CRASH_LOOP = 3;

/**
 * Waits (bounded) until each service is healthy, or for one-shot services (given as `name:exited`),
 * has exited 0. Fails with every state and the logs of each service that did not get there, at
 * once when a one-shot job failed or a service keeps crashing.
 */
export async function waitHealthy(project: Project, services: readonly string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const done = (s: ServiceState | undefined, oneShot: boolean): boolean => (oneShot ? s?.status === 'exited' && s.exitCode === 0 : s?.health === 'healthy');
  for (;;) {
    const states = await Promise.all(services.map(async (spec) => [spec, await project.state(spec.replace(/:exited$/, ''))] as const));
    const pending = states.filter(([spec, s]) => !done(s, spec.endsWith(':exited')));
    if (pending.length === 0) return;
    const failed = pending.filter(([spec, s]) => (spec.endsWith(':exited') && s?.status === 'exited') || (s?.restarts ?? 0) >= CRASH_LOOP);
    if (failed.length > 0 || Date.now() > deadline) {
      const report = await Promise.all(
        pending.map(async ([spec, s]) => `--- ${spec}: ${JSON.stringify(s ?? 'no container')}\n${await project.logs(spec.replace(/:exited$/, ''))}`),
      );
      throw new Error(`${failed.length > 0 ? 'failed' : `not healthy within ${timeoutMs / 1000} s`}:\n${report.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}
