/**
 * The compose stack, checked without a Docker engine: Debian's docker-compose parses it, the current
 * compose-spec schema accepts it, and the review checklist of ../shared/reference/compose.md holds.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_LOGINS } from '../../cli/enrol.js';
import { ROOT } from '../harness/cli.js';
import { tempDir } from '../harness/process.js';

interface Service {
  image?: string;
  build?: unknown;
  profiles?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test?: string[] | string; disable?: boolean; start_period?: string };
  depends_on?: Record<string, { condition: string }>;
  restart?: string;
  volumes?: string[];
  ports?: string[];
  command?: string[];
  entrypoint?: string[];
  user?: string;
  network_mode?: string;
}

const file = join(ROOT, 'docker-compose.yml');
const text = readFileSync(file, 'utf8');
const compose = parse(text, { merge: true }) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const services = compose.services;
const envExample = readFileSync(join(ROOT, '.env.example'), 'utf8');
const SECRETS = [
  'MQTT_BRIDGE_PASSWORD',
  'MQTT_READER_PASSWORD',
  'MQTT_HEALTHCHECK_PASSWORD',
  'INFLUX_ADMIN_PASSWORD',
  'INFLUX_ADMIN_TOKEN',
  'INFLUX_BRIDGE_PASSWORD',
  'INFLUX_GRAFANA_PASSWORD',
  'GRAFANA_ADMIN_PASSWORD',
];
/** Long-running services: everything but one-shot jobs. */
const longRunning = Object.entries(services).filter(([, s]) => s.restart !== 'no');

let dir: string;
let completeEnv: string;

beforeAll(async () => {
  dir = await tempDir('compose');
  completeEnv = join(dir, 'complete.env');
  await writeFile(completeEnv, envExample.replace(new RegExp(`^(${SECRETS.join('|')})=$`, 'gm'), '$1=a-secret-of-some-length'));
});
afterAll(() => import('node:fs/promises').then((fs) => fs.rm(dir, { recursive: true, force: true })));

function composeConfig(envFile: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile('docker-compose', ['--env-file', envFile, '-f', file, '--project-directory', ROOT, 'config', '-q'], (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output: stdout + stderr }),
    );
  });
}

describe('validators', () => {
  it("passes Debian's docker-compose config with every secret set", async () => {
    const run = await composeConfig(completeEnv);
    expect(run, run.output).toMatchObject({ code: 0 });
  });

  it('refuses to start with a secret missing, naming it', async () => {
    const run = await composeConfig(join(ROOT, '.env.example'));
    expect(run.code).not.toBe(0);
    expect(run.output).toMatch(/set (MQTT|INFLUX|GRAFANA)_[A-Z_]+ in \.env/);
  });

  it('matches the current compose-spec schema', () => {
    // The schema as dclint bundles it; its "$schema" names draft-07 by an https address Ajv does not know.
    const { $schema: _, ...schema } = JSON.parse(readFileSync(join(ROOT, 'node_modules/dclint/schemas/compose.schema.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const ajv = new Ajv({ strict: false, allErrors: true });
    const validate = ajv.compile(schema);
    const ok = validate(compose);
    expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 2)).toEqual([]);
    expect(ok).toBe(true);
    // The control: a misspelt key is caught.
    const broken = structuredClone(compose) as unknown as { services: Record<string, Record<string, unknown>> };
    (broken.services['bridge'] as Record<string, unknown>)['healthcheks'] = {};
    expect(validate(broken)).toBe(false);
  });
});

describe('review checklist', () => {
  it('pins every image: Mosquitto 2.0, InfluxDB 2.7, an exact Grafana, no latest', () => {
    const images = Object.values(services).map((s) => s.image ?? '');
    for (const image of images) expect(image).not.toMatch(/:latest$|^[^:]+$/);
    expect(services['mosquitto']?.image).toMatch(/^eclipse-mosquitto:2\.0\.\d+$/);
    expect(services['influxdb']?.image).toMatch(/^influxdb:2\.7\.\d+$/);
    expect(services['grafana']?.image).toMatch(/^grafana\/grafana:\d+\.\d+\.\d+$/);
  });

  it('gives every long-running service a healthcheck and a restart policy', () => {
    expect(longRunning.map(([name]) => name).sort()).toEqual(['agent', 'agent-nvidia', 'bridge', 'grafana', 'influxdb', 'mosquitto']);
    for (const [name, s] of longRunning) {
      expect(s.healthcheck?.test, name).toBeDefined();
      expect(s.healthcheck?.disable, name).toBeUndefined();
      expect(s.restart, name).toBe('unless-stopped');
    }
  });

  it('starts services only on healthy (or finished) dependencies', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        expect(services[dep], `${name} → ${dep}`).toBeDefined();
        expect(['service_healthy', 'service_completed_successfully'], `${name} → ${dep}`).toContain(condition);
      }
    }
    expect(services['bridge']?.depends_on).toEqual({ mosquitto: { condition: 'service_healthy' }, influxdb: { condition: 'service_healthy' } });
  });

  it('keeps data in named volumes, declared once', () => {
    const used = Object.values(services).flatMap((s) =>
      (s.volumes ?? []).map((v) => v.split(':')[0] ?? '').filter((v) => !v.startsWith('.') && !v.startsWith('/')),
    );
    expect(new Set(used)).toEqual(new Set(Object.keys(compose.volumes)));
  });

  it("keeps the bridge's and the agents' queues in named volumes, so a recreated container loses nothing", () => {
    for (const name of ['bridge', 'agent', 'agent-nvidia']) {
      const service = services[name];
      const dir = service?.environment?.['QUEUE_DIR'];
      expect(dir, name).toMatch(/^\//);
      const mounts = (service?.volumes ?? []).map((v) => v.split(':')).filter(([from]) => from !== undefined && /^[a-z]/.test(from));
      expect(
        mounts.some(([, to]) => to !== undefined && (dir === to || dir?.startsWith(`${to}/`))),
        name,
      ).toBe(true);
    }
  });

  it('takes every secret from .env as a required variable, never with a default', () => {
    for (const secret of SECRETS) {
      const uses = [...text.matchAll(new RegExp(`\\$\\{${secret}([^}]*)\\}`, 'g'))].map((m) => m[1] ?? '');
      expect(uses.length, secret).toBeGreaterThan(0);
      for (const use of uses) expect(use, secret).toMatch(/^:\?/);
      expect(envExample, secret).toMatch(new RegExp(`^${secret}=$`, 'm')); // empty in the example
    }
    expect(readFileSync(join(ROOT, '.gitignore'), 'utf8')).toMatch(/^\.env$/m);
    expect(() => execFileSync('git', ['ls-files', '--error-unmatch', '.env'], { cwd: ROOT, stdio: 'ignore' })).toThrow();
  });

  it('lists in .env.example exactly the variables the compose file reads', () => {
    const read = new Set([...text.matchAll(/\$\{([A-Z0-9_]+)/g)].map((m) => m[1]));
    const listed = new Set([...envExample.matchAll(/^([A-Z0-9_]+)=/gm)].map((m) => m[1]));
    expect([...listed].sort()).toEqual([...read].sort());
  });

  it('gives the bridge and Grafana least-privilege InfluxDB logins made by the init script', () => {
    const script = readFileSync(join(ROOT, 'influxdb/init/10-hostpulse.sh'), 'utf8');
    expect(script).toMatch(/^set -euo pipefail$/m);
    expect(execFileSync('git', ['ls-files', '-s', 'influxdb/init/10-hostpulse.sh'], { cwd: ROOT, encoding: 'utf8' })).toMatch(/^100755 /);
    const bridge = services['bridge']?.environment ?? {};
    const grafana = services['grafana']?.environment ?? {};
    expect(script).toMatch(new RegExp(`--username ${bridge['INFLUX_USERNAME']} \\\\\\n.*--write-bucket`));
    expect(script).toMatch(new RegExp(`--username ${grafana['GRAFANA_INFLUX_USERNAME']} \\\\\\n.*--read-bucket`));
    expect(script).not.toMatch(/--read-bucket[^\n]*\n[^\n]*hostpulse_bridge|hostpulse_bridge[\s\S]{0,120}--read-bucket/);
    const influx = services['influxdb']?.environment ?? {};
    for (const variable of [
      'DOCKER_INFLUXDB_INIT_MODE',
      'DOCKER_INFLUXDB_INIT_USERNAME',
      'DOCKER_INFLUXDB_INIT_PASSWORD',
      'DOCKER_INFLUXDB_INIT_ORG',
      'DOCKER_INFLUXDB_INIT_BUCKET',
    ]) {
      expect(influx[variable], variable).toBeDefined();
    }
    expect(services['influxdb']?.volumes).toEqual(
      expect.arrayContaining([expect.stringMatching(/:\/var\/lib\/influxdb2$/), expect.stringMatching(/:\/etc\/influxdb2$/)]),
    );
  });

  it('logs the bridge and the healthcheck into the broker with the service logins of the ACL', () => {
    expect(services['bridge']?.environment?.['MQTT_USERNAME']).toBe('hostpulse_bridge');
    expect(Object.keys(SERVICE_LOGINS)).toContain('hostpulse_bridge');
    const health = JSON.stringify(services['mosquitto']?.healthcheck?.test);
    expect(health).toContain('-u hostpulse_health');
    expect(health).toContain("'$$SYS/broker/uptime'");
    expect(services['mosquitto-init']?.command).toEqual(['enrol', '--services', '--passwd', '/mosquitto/config/passwd', '--owner', '1883:1883']);
    const conf = readFileSync(join(ROOT, 'mosquitto/mosquitto.conf'), 'utf8');
    expect(conf).toMatch(/^password_file \/mosquitto\/config\/passwd$/m);
    expect(conf).toMatch(/^acl_file \/mosquitto\/config\/acl$/m);
    expect(conf).toMatch(/^allow_anonymous false$/m);
    expect(services['mosquitto']?.volumes).toEqual(['./mosquitto:/mosquitto/config:ro', 'mosquitto-data:/mosquitto/data']);
  });

  it('mounts Grafana provisioning read-only and points the home dashboard at a provisioned file', () => {
    const g = services['grafana'];
    expect(g?.volumes).toEqual(
      expect.arrayContaining(['./grafana/provisioning:/etc/grafana/provisioning:ro', './grafana/dashboards:/var/lib/grafana/dashboards:ro']),
    );
    const home = g?.environment?.['GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH'] ?? '';
    expect(existsSync(join(ROOT, home.replace('/var/lib/grafana/dashboards', 'grafana/dashboards')))).toBe(true);
    expect(g?.environment?.['GF_AUTH_ANONYMOUS_ENABLED']).toBe('false');
    expect(g?.environment?.['GF_SECURITY_ADMIN_PASSWORD']).toMatch(/^\$\{GRAFANA_ADMIN_PASSWORD:\?/);
  });

  it('builds the bridge and the agent from this repository, the agent on host networking, NVIDIA GPUs on request', () => {
    for (const name of ['bridge', 'agent', 'agent-nvidia', 'mosquitto-init', 'enrol']) expect(services[name]?.build, name).toBe('.');
    expect(services['agent']?.profiles).toEqual(['agent']);
    expect(services['agent']?.network_mode).toBe('host');
    expect(text).toMatch(/driver: nvidia[\s\S]*capabilities: \[gpu, utility\]/);
    expect(services['influxdb']?.ports?.[0]).toMatch(/^\$\{INFLUX_BIND:-127\.0\.0\.1\}/); // the database is not exposed by default
  });
});
