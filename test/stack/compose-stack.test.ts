/**
 * The Compose stack started for real: the shipped docker-compose.yml on a Docker engine of the test's
 * own, with the project's image built from its Dockerfile and local stand-ins for the images no
 * registry serves here (test/stack/images/, test/stack/docker-compose.test.yml). Each step is what
 * the README tells a user to do, and each assertion what that user would see.
 *
 * Needs root, docker.io, docker-compose and debootstrap; it fails (it does not skip) without them,
 * unless HOSTPULSE_STACK_TEST=off.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ROOT, execCli, stopAllCli } from '../harness/cli.js';
import { engineProblem, startEngine, type Engine } from '../harness/docker.js';
import { waitFor } from '../harness/mqtt.js';
import { exportSeries, sampleCount, type Series } from './database.js';
import { prepareImages, type Timing } from './images.js';
import { tryLogin } from './login.js';
import { createProject, secret, waitHealthy, type Project } from './project.js';

const MIN = 60_000;
const off = process.env['HOSTPULSE_STACK_TEST'] === 'off';
if (off) console.info('test/stack skipped: HOSTPULSE_STACK_TEST=off (the Compose stack is not started on a Docker engine)');

/** The Docker machine's own agent (profile `agent`) and a PC outside the stack. */
const AGENT_HOST = 'stack-host';
const PC = 'office-pc';
const REFUSED = 'broker refused the connection: not authorized';
/** The long-running services this test starts (Grafana has no stand-in), and the one-shot job before them. */
const SERVICES = ['mosquitto-init:exited', 'mosquitto', 'influxdb', 'bridge'];

const settingsOf = (printed: string): Record<string, string> =>
  Object.fromEntries([...printed.matchAll(/^([A-Z_]+)=(.*)$/gm)].map((m) => [m[1] as string, m[2] as string]));
const diskNames = (series: readonly Series[]): string[] => [...new Set(series.map((s) => s.metric['disk'] ?? ''))].sort();

describe.skipIf(off)('the Compose stack on a Docker engine', () => {
  const started = Date.now();
  const timings: Timing[] = [];
  const timed = async <T>(step: string, work: () => Promise<T>): Promise<T> => {
    const start = Date.now();
    try {
      return await work();
    } finally {
      timings.push({ step, ms: Date.now() - start });
    }
  };
  let engine: Engine | undefined;
  let project: Project | undefined;
  let env: Record<string, string> = {};
  let agentEnv = '';
  const stack = (): Project => {
    if (!project) throw new Error('no compose project: the set-up failed');
    return project;
  };
  const mqttUrl = (): string => `mqtt://127.0.0.1:${env['MQTT_PORT']}`;
  const influxUrl = (): string => `http://127.0.0.1:${env['INFLUX_PORT']}`;
  const compose = async (args: readonly string[], timeoutMs?: number): Promise<string> => {
    const run = await stack().compose(args, timeoutMs);
    expect(run.code, `docker-compose ${args.join(' ')}:\n${run.stdout}\n${run.stderr}`).toBe(0);
    return run.stdout;
  };

  beforeAll(async () => {
    const problem = engineProblem();
    if (problem) throw new Error(`test/stack starts the Compose stack on a Docker engine and cannot here: ${problem}. HOSTPULSE_STACK_TEST=off skips it.`);
    engine = await timed('start dockerd', () => startEngine());
    timings.push(...(await prepareImages(engine)));
    project = await createProject(engine);
    env = await project.env();
    agentEnv = join(project.dir, 'agent.env');
  }, 20 * MIN);

  afterAll(async () => {
    await stopAllCli();
    await timed('down, stop dockerd, remove its data', async () => {
      if (project) await project.compose(['down', '--timeout', '5'], 3 * MIN);
      await engine?.stop();
      if (project) await rm(project.dir, { recursive: true, force: true });
    });
    const cold = timings.some((t) => t.cached === false && /rootfs|package/.test(t.step));
    const lines = timings.map((t) => `  ${t.step.padEnd(48)} ${(t.ms / 1000).toFixed(1).padStart(6)} s${t.cached ? ' (cached)' : ''}`);
    console.info(`test/stack, ${cold ? 'cold' : 'warm'} cache: ${((Date.now() - started) / 1000).toFixed(0)} s in all\n${lines.join('\n')}`);
  }, 5 * MIN);

  it('accepts the .env a user fills from .env.example: every secret set, everything on loopback', async () => {
    expect(env['MQTT_BRIDGE_PASSWORD']).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(env['MQTT_PUBLIC_URL']).toBe(mqttUrl());
    await compose(['config', '-q'], MIN);
  });

  it(
    "builds the project's own image from its Dockerfile",
    async () => {
      await timed('build hostpulse-test/hostpulse:local', () => compose(['build', 'mosquitto-init'], 15 * MIN));
      const inspect = await engine?.docker(['image', 'inspect', '--format', '{{.Config.User}} {{json .Config.Entrypoint}}', 'hostpulse-test/hostpulse:local']);
      expect(inspect?.stdout.trim()).toBe('node ["node","dist/cli/main.js"]');
    },
    16 * MIN,
  );

  it(
    "enrols the Docker machine's agent, writing the login into the copy, never into the checkout",
    async () => {
      const checkoutPasswd = join(ROOT, 'mosquitto/passwd');
      const before = existsSync(checkoutPasswd) ? statSync(checkoutPasswd).mtimeMs : undefined;
      const printed = settingsOf(await compose(['run', '--rm', '-T', 'enrol', AGENT_HOST], 5 * MIN));
      expect(printed).toMatchObject({ SENSORS_HOST: AGENT_HOST, MQTT_USERNAME: AGENT_HOST, MQTT_URL: mqttUrl() });
      await stack().setEnv('AGENT_HOST', AGENT_HOST);
      await stack().setEnv('AGENT_MQTT_PASSWORD', printed['MQTT_PASSWORD'] ?? '');
      expect(statSync(join(stack().dir, 'mosquitto/passwd')).uid).toBe(1883);
      expect(existsSync(checkoutPasswd) ? statSync(checkoutPasswd).mtimeMs : undefined).toBe(before);
    },
    6 * MIN,
  );

  it(
    'starts the broker, the database and the bridge: the init job exits 0, every service healthy',
    async () => {
      await timed('up -d (first start)', () => compose(['up', '-d', 'mosquitto-init', 'mosquitto', 'bridge', 'agent'], 10 * MIN));
      await timed('healthy', () => waitHealthy(stack(), SERVICES, 4 * MIN));
      // Published on this machine's loopback only, as .env asks.
      const ports = (await engine?.docker(['ps', '--format', '{{.Ports}}', '--filter', `label=com.docker.compose.project=${stack().name}`]))?.stdout ?? '';
      const published = ports
        .split(/[\n,]/)
        .map((p) => p.trim())
        .filter((p) => p.includes('->'));
      expect(published.length).toBeGreaterThanOrEqual(5);
      for (const mapping of published) expect(mapping).toMatch(/^127\.0\.0\.1:\d+->/);
    },
    15 * MIN,
  );

  it(
    "starts this machine's agent (profile agent): healthy",
    async () => {
      await waitHealthy(stack(), ['agent'], 3 * MIN);
    },
    4 * MIN,
  );

  it(
    'enrols a PC: the printed settings log in once the broker is told (SIGHUP), not before',
    async () => {
      const printed = await compose(['run', '--rm', '-T', 'enrol', PC], 5 * MIN);
      const settings = settingsOf(printed);
      expect(Object.keys(settings)).toEqual(['SENSORS_HOST', 'MQTT_URL', 'MQTT_USERNAME', 'MQTT_PASSWORD']);
      expect(settings).toMatchObject({ SENSORS_HOST: PC, MQTT_USERNAME: PC, MQTT_URL: mqttUrl() });
      // As the README says: those lines saved as agent.env, then `hostpulse agent --config agent.env`.
      await writeFile(agentEnv, printed);
      const refused = await execCli(['agent', '--once', '--config', agentEnv]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(REFUSED);
      await compose(['kill', '-s', 'SIGHUP', 'mosquitto'], MIN);
      const login = { username: PC, password: settings['MQTT_PASSWORD'] ?? '' };
      await waitFor('the new login to be accepted', async () => ((await tryLogin(mqttUrl(), login)) === 'accepted' ? true : undefined), 20_000);
    },
    7 * MIN,
  );

  it(
    'stores what an agent outside the stack publishes, each sample once',
    async () => {
      const run = await execCli(['agent', '--once', '--config', agentEnv]);
      expect(run.code, run.stderr).toBe(0);
      const published = Number(/"published":(\d+)/.exec(run.stdout)?.[1]);
      expect(published).toBeGreaterThan(5);
      const samples = (all: Series[]): Series[] => all.filter((s) => !s.metric['__name__']?.startsWith('availability_'));
      const stored = await waitFor(
        'the samples in the database',
        async () => {
          const series = samples(await exportSeries(influxUrl(), `{host="${PC}"}`));
          return sampleCount(series) >= published ? series : undefined;
        },
        60_000,
      );
      expect(sampleCount(stored)).toBe(published);
      expect(stored.map((s) => s.metric['__name__'])).toEqual(expect.arrayContaining(['cpu_usage', 'mem_usage', 'disk_usage']));
    },
    2 * MIN,
  );

  it(
    "stores the containerised agent's disks under the host's paths (HOST_MOUNT_PREFIX), not under /hostfs",
    async () => {
      await waitHealthy(stack(), ['agent'], MIN);
      const inContainer = await waitFor(
        "the Docker machine's disks in the database",
        async () => {
          const series = await exportSeries(influxUrl(), `{__name__=~"disk_.*",host="${AGENT_HOST}"}`);
          return series.length >= 3 ? series : undefined;
        },
        2 * MIN,
      );
      // The same machine seen by the agent run directly on it.
      const direct = await execCli(['agent', '--print', '--host', 'direct']);
      const topics = [...direct.stdout.matchAll(/"topic":"sensors\/direct\/disk_([a-z0-9_]+)_usage"/g)].map((m) => m[1] as string);
      expect(diskNames(inContainer)).toEqual([...new Set(topics)].sort());
      expect(diskNames(inContainer)).toContain('root');
      expect(diskNames(inContainer).join(' ')).not.toMatch(/hostfs/);
      // Its root is the host's root: the same size (used + free stays put while files come and go).
      const size = (used: number, free: number): number => used + free;
      const last = (name: string): number => inContainer.find((s) => s.metric['__name__'] === name && s.metric['disk'] === 'root')?.values.at(-1) ?? Number.NaN;
      const value = (metric: string): number =>
        Number(new RegExp(`"topic":"sensors/direct/${metric}","payload":\\{"value":([0-9.e+]+)`).exec(direct.stdout)?.[1]);
      expect(size(last('disk_used'), last('disk_free'))).toBe(size(value('disk_root_used'), value('disk_root_free')));
    },
    3 * MIN,
  );

  it('refuses anonymous clients and wrong passwords', async () => {
    expect(await tryLogin(mqttUrl())).toBe(REFUSED);
    expect(await tryLogin(mqttUrl(), { username: PC, password: secret() })).toBe(REFUSED);
    expect(await tryLogin(mqttUrl(), { username: 'hostpulse_bridge', password: secret() })).toBe(REFUSED);
  });

  it(
    'keeps the data and the logins across `down` and `up`: named volumes stay, services healthy again',
    async () => {
      const samplesOf = async (): Promise<Series[]> =>
        (await exportSeries(influxUrl(), `{host="${PC}"}`)).filter((s) => !s.metric['__name__']?.startsWith('availability_'));
      const before = await samplesOf();
      await timed('down', () => compose(['down'], 3 * MIN));
      const label = `label=com.docker.compose.project=${stack().name}`;
      expect((await engine?.docker(['ps', '-a', '-q', '--filter', label]))?.stdout.trim()).toBe('');
      const volumes = (await engine?.docker(['volume', 'ls', '--format', '{{.Name}}', '--filter', label]))?.stdout.split('\n').filter(Boolean).sort();
      const declared = Object.keys((parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as { volumes: Record<string, unknown> }).volumes);
      expect(volumes).toEqual(declared.map((v) => `${stack().name}_${v}`).sort());

      await timed('up -d (second start)', () => compose(['up', '-d', 'mosquitto-init', 'mosquitto', 'bridge', 'agent'], 10 * MIN));
      await timed('healthy again', () => waitHealthy(stack(), SERVICES, 4 * MIN));
      const points = (series: Series[]): string[] => series.flatMap((s) => s.timestamps.map((t, i) => `${JSON.stringify(s.metric)} ${t} ${s.values[i]}`));
      expect(points(before).length).toBeGreaterThan(5);
      expect(points(await samplesOf())).toEqual(expect.arrayContaining(points(before)));
      const settings = settingsOf(await readFile(agentEnv, 'utf8'));
      expect(await tryLogin(mqttUrl(), { username: PC, password: settings['MQTT_PASSWORD'] ?? '' })).toBe('accepted');
      // Last, so that a broken agent hides none of the above.
      await waitHealthy(stack(), ['agent'], 3 * MIN);
    },
    20 * MIN,
  );
});
