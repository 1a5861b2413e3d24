import { describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../../agent/config.js';
import { loadBridgeConfig } from '../../bridge/config.js';
import { parseDuration } from '../../common/config.js';
import { defaultStateDir } from '../../common/state-dir.js';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { ROOT, execCli } from '../harness/cli.js';

describe('durations', () => {
  it.each([
    ['500ms', 500],
    ['10s', 10_000],
    ['1.5m', 90_000],
    ['2h', 7_200_000],
    ['10', undefined],
    ['10 s', undefined],
    ['-1s', undefined],
    ['7d', 604_800_000],
    ['1w', undefined],
    ['', undefined],
  ])('%j is %s ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });
});

describe('agent configuration', () => {
  it('has working defaults', () => {
    const result = loadAgentConfig({}, 'Office-PC.local');
    expect(result).toEqual({
      ok: true,
      config: {
        host: 'office-pc-local',
        intervalMs: 10_000,
        mqtt: { url: 'mqtt://localhost:1883', username: undefined, password: undefined, keepaliveSeconds: 15 },
        queue: { dir: join(homedir(), '.local', 'state', 'hostpulse', 'agent-office-pc-local'), maxBytes: 100 * 1024 * 1024, maxAgeMs: 7 * 86_400_000 },
        hostMountPrefix: undefined,
        http: { host: '127.0.0.1', port: 0, allowedHosts: [] },
        logLevel: 'info',
        haDiscovery: { enabled: true, prefix: 'homeassistant' },
      },
    });
  });

  it('takes every setting from the environment', () => {
    const result = loadAgentConfig(
      {
        SENSORS_HOST: 'pc-7',
        SAMPLE_INTERVAL: '2s',
        MQTT_URL: 'mqtts://broker:8883',
        MQTT_USERNAME: 'pc-7',
        MQTT_PASSWORD: 'pw',
        MQTT_KEEPALIVE: '1m',
        QUEUE_DIR: '/var/lib/hostpulse/agent',
        MAX_QUEUE_BYTES: '2097152',
        MAX_QUEUE_AGE: '36h',
        HOST_MOUNT_PREFIX: '/hostfs',
        HTTP_HOST: '0.0.0.0',
        HTTP_PORT: '9101',
        LOG_LEVEL: 'debug',
        HA_DISCOVERY: 'false',
        HA_DISCOVERY_PREFIX: 'hass',
      },
      'ignored',
    );
    expect(result).toEqual({
      ok: true,
      config: {
        host: 'pc-7',
        intervalMs: 2000,
        mqtt: { url: 'mqtts://broker:8883', username: 'pc-7', password: 'pw', keepaliveSeconds: 60 },
        queue: { dir: '/var/lib/hostpulse/agent', maxBytes: 2 * 1024 * 1024, maxAgeMs: 36 * 3_600_000 },
        hostMountPrefix: '/hostfs',
        http: { host: '0.0.0.0', port: 9101, allowedHosts: [] },
        logLevel: 'debug',
        haDiscovery: { enabled: false, prefix: 'hass' },
      },
    });
  });

  it('treats an empty variable as unset', () => {
    const result = loadAgentConfig({ SENSORS_HOST: '', SAMPLE_INTERVAL: '' }, 'pc');
    expect(result).toMatchObject({ ok: true, config: { host: 'pc', intervalMs: 10_000 } });
  });

  it('keeps its queue where each platform keeps state, or in memory with QUEUE_DIR=off', () => {
    const dir = (env: Record<string, string>): string | undefined => (loadAgentConfig(env, 'pc') as { config: { queue: { dir?: string } } }).config.queue.dir;
    expect(dir({ XDG_STATE_HOME: '/home/u/.state' })).toBe('/home/u/.state/hostpulse/agent-pc');
    expect(dir({ STATE_DIRECTORY: '/var/lib/hostpulse' })).toBe('/var/lib/hostpulse/agent-pc');
    expect(dir({ QUEUE_DIR: 'off' })).toBeUndefined();
    expect(defaultStateDir({ LOCALAPPDATA: 'C:\\Users\\u\\AppData\\Local' }, 'agent-pc', 'win32')).toBe('C:\\Users\\u\\AppData\\Local\\hostpulse\\agent-pc');
    expect(defaultStateDir({ HOME: '/Users/u' }, 'agent-pc', 'darwin')).toBe('/Users/u/Library/Application Support/hostpulse/agent-pc');
  });

  it.each([
    [{ SENSORS_HOST: 'Bad Host' }, 'SENSORS_HOST: "Bad Host" must be lower-case letters, digits and "-", starting with a letter or digit'],
    [{ SENSORS_HOST: 'pc/1' }, 'SENSORS_HOST: "pc/1" must be lower-case letters, digits and "-", starting with a letter or digit'],
    [{ SENSORS_HOST: 'pc+' }, 'SENSORS_HOST: "pc+" must be lower-case letters, digits and "-", starting with a letter or digit'],
    [{ SENSORS_HOST: 'x'.repeat(64) }, `SENSORS_HOST: "${'x'.repeat(64)}" is 64 characters long (at most 63)`],
    [{ SAMPLE_INTERVAL: '500ms' }, 'SAMPLE_INTERVAL: must be between 1s and 24h (got "500ms")'],
    [{ SAMPLE_INTERVAL: 'often' }, 'SAMPLE_INTERVAL: must be a duration such as 500ms, 10s, 5m or 1h (got "often")'],
    [{ MQTT_URL: 'localhost:1883' }, 'MQTT_URL: must start with mqtt:// or mqtts:// or ws:// or wss:// (got "localhost:1883")'],
    [{ MQTT_URL: 'not a url' }, 'MQTT_URL: must be a URL such as mqtt://host:port (got "not a url")'],
    [{ MQTT_PASSWORD: 'pw' }, 'MQTT_USERNAME: is required when MQTT_PASSWORD is set'],
    [{ MAX_QUEUE_BYTES: '1000' }, 'MAX_QUEUE_BYTES: must be a whole number from 1048576 to 1099511627776 (got "1000")'],
    [{ MAX_QUEUE_AGE: '30s' }, 'MAX_QUEUE_AGE: must be between 1m and 365d (got "30s")'],
    [{ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent'],
    [{ HOST_MOUNT_PREFIX: 'hostfs' }, 'HOST_MOUNT_PREFIX: must be an absolute path such as /hostfs'],
    [{ HOST_MOUNT_PREFIX: '/hostfs/' }, 'HOST_MOUNT_PREFIX: must be an absolute path such as /hostfs'],
    [{ HTTP_PORT: '70000' }, 'HTTP_PORT: must be a whole number from 0 to 65535 (got "70000")'],
    [{ HA_DISCOVERY: 'maybe' }, 'HA_DISCOVERY: must be true or false (got "maybe")'],
    [{ HA_DISCOVERY_PREFIX: 'home/assistant' }, 'HA_DISCOVERY_PREFIX: must be one MQTT topic level, without "+", "#", "/" or NUL'],
    [{ HA_DISCOVERY_PREFIX: 'ha#' }, 'HA_DISCOVERY_PREFIX: must be one MQTT topic level, without "+", "#", "/" or NUL'],
  ])('%j → %s', (env, line) => {
    expect(loadAgentConfig(env, 'pc')).toEqual({ ok: false, errors: [line] });
  });

  it('refuses an OS host name that gives no valid name', () => {
    expect(loadAgentConfig({}, '___')).toEqual({ ok: false, errors: ['SENSORS_HOST: the OS host name "___" gives no valid host name; set SENSORS_HOST'] });
  });
});

describe('bridge configuration', () => {
  const v2 = { INFLUX_URL: 'http://db:8086', INFLUX_BUCKET: 'hostpulse', INFLUX_ORG: 'home', INFLUX_TOKEN: 't' };

  it('defaults to the v2 API', () => {
    const result = loadBridgeConfig(v2);
    expect(result).toMatchObject({
      ok: true,
      config: {
        mqtt: { url: 'mqtt://localhost:1883', clientId: 'hostpulse-bridge' },
        influx: { api: '2', url: 'http://db:8086', bucket: 'hostpulse', org: 'home', token: 't', timeoutMs: 10_000 },
        batchSize: 5000,
        flushIntervalMs: 1000,
        maxBuffered: 100_000,
        maxPayloadBytes: 4096,
        maxFutureMs: 300_000,
        shutdownTimeoutMs: 10_000,
      },
    });
  });

  it('speaks the v1 API with INFLUX_API=1', () => {
    const result = loadBridgeConfig({
      INFLUX_API: '1',
      INFLUX_URL: 'http://db:8086',
      INFLUX_DATABASE: 'hp',
      INFLUX_USERNAME: 'u',
      INFLUX_PASSWORD: 'p',
      INFLUX_RETENTION_POLICY: 'week',
    });
    expect(result).toMatchObject({ ok: true, config: { influx: { api: '1', database: 'hp', username: 'u', password: 'p', retentionPolicy: 'week' } } });
  });

  it.each([
    [{ INFLUX_BUCKET: 'b' }, ['INFLUX_URL: is required']],
    [{ INFLUX_URL: 'http://db:8086' }, ['INFLUX_BUCKET: is required (or set INFLUX_API=1 and INFLUX_DATABASE for InfluxDB 1.x)']],
    [{ INFLUX_API: '1', INFLUX_URL: 'http://db:8086', INFLUX_BUCKET: 'b' }, ['INFLUX_DATABASE: is required when INFLUX_API=1']],
    [{ ...v2, INFLUX_API: '3' }, ['INFLUX_API: must be one of 2, 1']],
    [{ ...v2, INFLUX_URL: 'db:8086' }, ['INFLUX_URL: must start with http:// or https:// (got "db:8086")']],
    [{ ...v2, INFLUX_PASSWORD: 'p' }, ['INFLUX_USERNAME: is required when INFLUX_PASSWORD is set']],
    [{ ...v2, MQTT_CLIENT_ID: 'bridge #1' }, ['MQTT_CLIENT_ID: must be 1–64 letters, digits, "_" or "-"']],
    [{ ...v2, BATCH_SIZE: '5000', MAX_BUFFERED: '100' }, ['MAX_BUFFERED: must be at least BATCH_SIZE (5000)']],
    [{ ...v2, FLUSH_INTERVAL: '1ms' }, ['FLUSH_INTERVAL: must be between 10ms and 1m (got "1ms")']],
  ])('%j → %j', (env, errors) => {
    expect(loadBridgeConfig(env)).toEqual({ ok: false, errors });
  });

  it('reports every problem at once, one line per variable', () => {
    const result = loadBridgeConfig({ MQTT_URL: 'ftp://x', INFLUX_URL: 'nope', BATCH_SIZE: 'many', SHUTDOWN_TIMEOUT: 'soon' });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.errors.map((e) => e.split(':')[0])).toEqual(['MQTT_URL', 'INFLUX_URL', 'BATCH_SIZE', 'SHUTDOWN_TIMEOUT']);
  });
});

describe('the CLI at start', () => {
  it('prints one line per configuration problem and exits non-zero (agent)', async () => {
    const { code, stderr, stdout } = await execCli(['agent', '--once'], { SENSORS_HOST: 'bad#host', SAMPLE_INTERVAL: '0s', MQTT_URL: 'http://broker' });
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.trim().split('\n')).toEqual([
      'hostpulse agent: invalid configuration',
      'SAMPLE_INTERVAL: must be between 1s and 24h (got "0s")',
      'MQTT_URL: must start with mqtt:// or mqtts:// or ws:// or wss:// (got "http://broker")',
    ]);
  });

  it("warns when the login is not the host name, which hostpulse's broker rules would refuse", async () => {
    const run = await execCli(['agent', '--print', '--host', 'pc-1'], { MQTT_USERNAME: 'pc-2', MQTT_PASSWORD: 'pw' });
    expect(run.code).toBe(0);
    const warning = run.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; host?: string; username?: string })
      .find((l) => l.msg.startsWith('MQTT_USERNAME differs'));
    expect(warning).toMatchObject({ host: 'pc-1', username: 'pc-2' });
    const same = await execCli(['agent', '--print', '--host', 'pc-1'], { MQTT_USERNAME: 'pc-1', MQTT_PASSWORD: 'pw' });
    expect(same.stderr).not.toContain('MQTT_USERNAME differs');
  });

  it('names the host variable when only the host is wrong', async () => {
    const { code, stderr } = await execCli(['agent', '--print'], { SENSORS_HOST: 'bob/cpu' });
    expect(code).toBe(2);
    expect(stderr).toContain('SENSORS_HOST: "bob/cpu" must be lower-case letters');
  });

  it('prints one line per configuration problem and exits non-zero (bridge)', async () => {
    const { code, stderr } = await execCli(['bridge'], { INFLUX_API: '1', BATCH_SIZE: '0' });
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toEqual([
      'hostpulse bridge: invalid configuration',
      'INFLUX_URL: is required',
      'BATCH_SIZE: must be a whole number from 1 to 100000 (got "0")',
    ]);
  });

  it('refuses unknown flags and commands', async () => {
    expect(await execCli(['agent', '--fast'])).toMatchObject({ code: 2, stderr: expect.stringContaining("Unknown option '--fast'") });
    expect(await execCli(['collector'])).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown command "collector"') });
  });

  it('runs as `npx hostpulse` in the repository after npm ci', () => {
    const out = execFileSync('npx', ['--no-install', 'hostpulse', '--help'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, npm_config_update_notifier: 'false' },
    });
    expect(out).toContain('Usage: hostpulse <command>');
  });

  it('shows help for the CLI and each command', async () => {
    expect(await execCli(['--help'])).toMatchObject({ code: 0, stdout: expect.stringContaining('Usage: hostpulse <command>') });
    expect(await execCli(['agent', '--help'])).toMatchObject({ code: 0, stdout: expect.stringContaining('SAMPLE_INTERVAL') });
    expect(await execCli(['bridge', '--help'])).toMatchObject({ code: 0, stdout: expect.stringContaining('INFLUX_API=1') });
  });
});
