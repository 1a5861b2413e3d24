/**
 * The Grafana provisioning of the compose stack, proved against the real pipeline: real agents (the
 * built CLI, replaying the recorded machines) → real Mosquitto → the real bridge → real InfluxDB 1.6.
 * Every dashboard query, every template-variable query and every alert-rule query is interpolated as
 * Grafana would and run with InfluxQL; each must answer without error, with data for the hosts that
 * publish what it reads, and nothing from hosts that were not selected.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalog, decodeMessage, pipelineStorage, availabilityStorage, REJECT_REASONS, type MetricSpec } from '../../protocol/index.js';
import { ROOT, runCli, stopAllCli, type Running } from '../harness/cli.js';
import {
  allPanels,
  at,
  dataLinks,
  interpolate,
  list,
  parseYaml,
  variableQuery,
  variablesIn,
  type Dashboard,
  type Panel,
  type Target,
  type VariableValue,
  type Yaml,
} from '../harness/grafana.js';
import { startInfluxDB, type InfluxDB, type InfluxSeries } from '../harness/influxdb.js';
import { startMosquitto, type Mosquitto } from '../harness/mosquitto.js';
import { capture, mosquittoPub, waitFor, type Capture } from '../harness/mqtt.js';

const DB = 'hostpulse';
const DS = { type: 'influxdb', uid: 'hostpulse-influxdb' };
const GRAFANA = join(ROOT, 'grafana');
const DASHBOARDS = join(GRAFANA, 'dashboards');
const FIXTURES = new URL('../fixtures/machines/', import.meta.url);
const MACHINES = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.json'))
  .sort();
const hostOf = (file: string): string => `gf-${file.replace('.json', '')}`;
/** Hosts with a running agent (their real samples and availability). */
const AGENTS = MACHINES.map(hostOf);
const WORKSTATION = hostOf('linux-2gpu-workstation.json');
/** This agent is stopped cleanly once it has published: its availability turns offline. */
const STOPPED = hostOf('linux-laptop.json');
/** Sent two samples 20 minutes ago and nothing since: the "stopped reporting" alert must fire for it. */
const SILENT = 'gf-silent';
/** A third-party publisher running hot and full: the temperature and disk alerts must fire for it. */
const HOT = 'gf-hot';
const BRIDGE = 'hostpulse-bridge';
/** What the dashboards are evaluated with: the last hour, 10 s buckets. */
const MACROS = { timeFilter: 'time >= now() - 1h', intervalMs: 10_000 };
const RANGE_MS = 3_600_000;

let broker: Mosquitto;
let influx: InfluxDB;
let bridge: Running;
let watch: Capture;
const agents: Running[] = [];

// ---------------------------------------------------------------------------------------------
// What was published: the ground truth a query's answer is checked against.

interface Published {
  readonly host: string;
  readonly measurement: string;
  readonly field: string;
  readonly tag?: string;
  readonly instance?: string;
  readonly ts: number;
}

/** Every accepted message the watcher saw, decoded with the contract's own decoder. */
function publishedSamples(): Published[] {
  const out: Published[] = [];
  for (const m of watch.messages) {
    const decoded = decodeMessage(m.topic, Buffer.from(m.payload), { now: m.at, maxPayloadBytes: 4096, maxFutureMs: 300_000 });
    if (!decoded.ok || decoded.kind === 'availability_cleared') continue;
    if (decoded.kind === 'availability') {
      out.push({ host: decoded.host, measurement: availabilityStorage.measurement, field: availabilityStorage.field, ts: m.at });
      continue;
    }
    const { sample } = decoded;
    const spec: MetricSpec = sample.metric.spec;
    out.push({
      host: sample.host,
      measurement: spec.influx.measurement,
      field: spec.influx.field,
      ...(spec.instanceTag && sample.metric.instance !== undefined ? { tag: spec.instanceTag, instance: sample.metric.instance } : {}),
      ts: sample.ts,
    });
  }
  return out;
}

const KNOWN_FIELDS = new Map<string, Set<string>>();
for (const spec of Object.values(catalog) as MetricSpec[]) {
  const fields = KNOWN_FIELDS.get(spec.influx.measurement) ?? new Set<string>();
  fields.add(spec.influx.field);
  KNOWN_FIELDS.set(spec.influx.measurement, fields);
}
KNOWN_FIELDS.set(availabilityStorage.measurement, new Set([availabilityStorage.field]));
KNOWN_FIELDS.set(
  pipelineStorage.measurement,
  new Set([
    'received',
    'written',
    'rejected',
    'db_rejected',
    'retries',
    'buffered',
    'lost',
    'dropped',
    'missing',
    'availability',
    ...REJECT_REASONS.map((r) => `rejected_${r}`),
  ]),
);

interface Reads {
  readonly measurement: string;
  readonly fields: string[];
}

/** Which stored measurement and fields a query reads (the innermost FROM, the fields its functions take). */
function readsOf(query: string): Reads {
  const measurements = [...query.matchAll(/FROM "(\w+)"/g)].map((m) => m[1] as string);
  expect(new Set(measurements).size, `one measurement per query: ${query}`).toBe(1);
  const measurement = measurements[0] as string;
  const known = KNOWN_FIELDS.get(measurement);
  expect(known, `"${measurement}" is stored by hostpulse: ${query}`).toBeDefined();
  const fields = [...query.matchAll(/\b\w+\("(\w+)"/g)].map((m) => m[1] as string).filter((f) => known?.has(f));
  if (!query.startsWith('SHOW')) expect(fields.length, `reads a stored field: ${query}`).toBeGreaterThan(0);
  for (const f of query.matchAll(/\b\w+\("(\w+)"\)\s+AS/g)) {
    const inner = query.includes('FROM (');
    if (!inner) expect(known?.has(f[1] as string), `field "${f[1]}" exists in "${measurement}": ${query}`).toBe(true);
  }
  return { measurement, fields: [...new Set(fields)] };
}

/** Tag filters a query applies through template variables: `"tag" =~ /^$var$/`. */
function tagFilters(query: string): Map<string, string> {
  return new Map([...query.matchAll(/"(\w+)" =~ \/\^\$\{?(\w+)\}?\$\//g)].map((m) => [m[1] as string, m[2] as string]));
}

function rows(series: InfluxSeries): Record<string, unknown>[] {
  return series.values.map((v) => Object.fromEntries(series.columns.map((c, i) => [c, v[i]])));
}

function hasValue(series: readonly InfluxSeries[]): boolean {
  return series.some((s) => s.values.some((v) => v.some((x, i) => s.columns[i] !== 'time' && x !== null)));
}

interface Expectation {
  /** Hosts whose data the answer must contain (when grouped by host), or that make it non-empty. */
  readonly hosts: Set<string>;
  /** Hosts whose data may appear. */
  readonly allowed: Set<string>;
}

/** What a query must return, given the variables' values, from what was published. */
function expectation(query: string, vars: Readonly<Record<string, VariableValue>>): Expectation {
  const { measurement, fields } = readsOf(query);
  const filters = tagFilters(query);
  const now = Date.now();
  const window = /time > now\(\) - (\d+)m/.exec(query);
  const since = window ? now - Number(window[1]) * 60_000 : query.includes('$timeFilter') ? now - RANGE_MS : 0;
  const selected = (tag: string, value: string | undefined): boolean => {
    const name = filters.get(tag);
    if (!name) return true;
    const v = vars[name]?.value;
    if (v === undefined || value === undefined) return false;
    return typeof v === 'string' ? v === value : v.includes(value);
  };
  const hosts = new Set<string>();
  const allowed = new Set<string>();
  for (const p of publishedSamples()) {
    if (p.measurement !== measurement || !fields.includes(p.field) || !selected('host', p.host)) continue;
    if (p.tag && !selected(p.tag, p.instance)) continue;
    allowed.add(p.host);
    // A sample at the edge of a window may or may not be inside when InfluxDB answers.
    if (p.ts >= since + 30_000) hosts.add(p.host);
  }
  return { hosts, allowed };
}

/** Runs an interpolated query and checks its answer against what was published. */
async function check(where: string, query: string, vars: Readonly<Record<string, VariableValue>>, intervalMs = MACROS.intervalMs): Promise<InfluxSeries[]> {
  const q = interpolate(query, vars, { ...MACROS, intervalMs });
  expect(q, `${where}: nothing left to interpolate`).not.toMatch(/\$[\w{]|\[\[/);
  let series: InfluxSeries[];
  try {
    series = (await influx.query(q, DB)).series;
  } catch (error) {
    throw new Error(`${where}: ${String(error)}`);
  }
  const { measurement } = readsOf(query);
  if (measurement === pipelineStorage.measurement) {
    expect(series.length, `${where}: ${q}`).toBeGreaterThan(0);
    expect(hasValue(series), `${where}: values in ${q}`).toBe(true);
    for (const s of series) if (s.tags?.['bridge'] !== undefined) expect(s.tags['bridge']).toBe(BRIDGE);
    return series;
  }
  const { hosts, allowed } = expectation(query, vars);
  if (hosts.size > 0) {
    expect(series.length, `${where}: data for ${[...hosts].join(', ')} from ${q}`).toBeGreaterThan(0);
    expect(hasValue(series), `${where}: values, not only nulls, from ${q}`).toBe(true);
  }
  if (allowed.size === 0) expect(series, `${where}: nothing for hosts that do not publish it, from ${q}`).toEqual([]);
  const grouped = series.filter((s) => s.tags?.['host'] !== undefined).map((s) => s.tags?.['host'] as string);
  if (grouped.length > 0) {
    for (const h of hosts) expect(grouped, `${where}: host ${h} in ${q}`).toContain(h);
    for (const h of grouped) expect([...allowed], `${where}: host ${h} was not selected or publishes nothing read by ${q}`).toContain(h);
  }
  return series;
}

// ---------------------------------------------------------------------------------------------
// The files

function readDashboard(file: string): Dashboard {
  return JSON.parse(readFileSync(join(DASHBOARDS, file), 'utf8')) as Dashboard;
}
const DASHBOARD_FILES = readdirSync(DASHBOARDS)
  .filter((f) => f.endsWith('.json'))
  .sort();
const dashboards = new Map(DASHBOARD_FILES.map((f) => [f, readDashboard(f)]));
const yaml = (path: string): Yaml => parseYaml(readFileSync(join(GRAFANA, 'provisioning', path), 'utf8'));

function targetsOf(panel: Panel): Target[] {
  return panel.targets ?? [];
}

/**
 * Values of a variable query for a given host selection (as Grafana refreshes it when $host changes):
 * the "value" column of every series, deduplicated as Grafana's InfluxDB response parser does
 * (SHOW TAG VALUES without FROM answers once per measurement).
 */
async function variableValues(query: string, vars: Readonly<Record<string, VariableValue>>): Promise<string[]> {
  const q = interpolate(query, vars, MACROS);
  const res = await influx.query(q, DB);
  for (const s of res.series) expect(s.columns, q).toEqual(['key', 'value']);
  return [...new Set(res.series.flatMap((s) => s.values.map((v) => String(v[1]))))].sort();
}

function instancesOf(host: string, measurement: string): string[] {
  return [
    ...new Set(
      publishedSamples()
        .filter((p) => p.host === host && p.measurement === measurement && p.instance !== undefined)
        .map((p) => p.instance as string),
    ),
  ].sort();
}

// ---------------------------------------------------------------------------------------------

beforeAll(async () => {
  [broker, influx] = await Promise.all([startMosquitto(), startInfluxDB([DB])]);
  watch = await capture(broker.url);
  bridge = runCli(['bridge'], {
    MQTT_URL: broker.url,
    INFLUX_API: '1',
    INFLUX_URL: influx.url,
    INFLUX_DATABASE: DB,
    FLUSH_INTERVAL: '100ms',
    STATS_INTERVAL: '1s',
  });
  await bridge.waitForLog((l) => l.msg === 'subscribed');
  const firstStats = await waitFor(
    'the first stored counters',
    async () => (await influx.query('SELECT last("received") FROM "hostpulse_bridge"', DB)).series[0]?.values[0]?.[0] as number | undefined,
  );

  for (const file of MACHINES) {
    agents.push(runCli(['agent', '--replay', new URL(file, FIXTURES).pathname], { MQTT_URL: broker.url, SENSORS_HOST: hostOf(file), SAMPLE_INTERVAL: '1s' }));
  }
  const now = Date.now();
  for (const [metric, value] of [
    ['cpu_temp', 91.5],
    ['gpu0_temp', 92],
    ['disk_root_usage', 95.5],
  ] as const) {
    for (const ts of [now - 2000, now - 1000]) await mosquittoPub(broker.port, `sensors/${HOT}/${metric}`, JSON.stringify({ value, ts }));
  }
  for (const ts of [now - 20 * 60_000, now - 19 * 60_000]) await mosquittoPub(broker.port, `sensors/${SILENT}/cpu_usage`, JSON.stringify({ value: 12.5, ts }));

  // Rejections land in a later 10 s bucket than the first counters, so their rate is visible.
  await waitFor('a new 10 s bucket', () => (Math.floor(Date.now() / 10_000) > Math.floor(firstStats / 10_000) ? true : undefined), 15_000);
  const garbage: [string, string][] = [
    ['sensors/gf-garbage/fan_rpm', '1200'],
    ['sensors/gf-garbage/cpu_temp', 'hot'],
    ['sensors/gf-garbage/cpu_usage', '250'],
    ['sensors/GF_Garbage/cpu_temp', '40'],
    ['sensors/gf-garbage/cpu_temp', `{"value":40,"ts":${Math.floor(now / 1000)}}`],
  ];
  for (const [topic, message] of garbage) await mosquittoPub(broker.port, topic, message);

  await waitFor(
    'three rounds of every agent',
    () => (AGENTS.every((h) => watch.forHost(h).filter((m) => m.topic.endsWith('/cpu_usage')).length >= 3) ? true : undefined),
    20_000,
  );
  const laptop = agents[MACHINES.indexOf('linux-laptop.json')];
  expect(await laptop?.stop('SIGTERM')).toBe(0);

  // Everything published is stored, and the counters show the rejections as a rate.
  await waitFor(
    'every sample stored',
    async () => {
      const expected = publishedSamples().filter((p) => p.measurement === 'cpu' && p.field === 'usage').length;
      const stored = await influx.query('SELECT count("usage") FROM "cpu"', DB);
      return (stored.series[0]?.values[0]?.[1] as number) >= expected ? true : undefined;
    },
    15_000,
  );
  await waitFor('offline stored', async () =>
    (await influx.query(`SELECT last("online") FROM "availability" WHERE "host" = '${STOPPED}'`, DB)).series[0]?.values[0]?.[1] === 0 ? true : undefined,
  );
  await waitFor(
    'the rejections as a rate',
    async () => {
      const r = await influx.query(
        'SELECT non_negative_derivative(last("rejected"), 1s) FROM "hostpulse_bridge" WHERE time >= now() - 1h GROUP BY time(10s) fill(none)',
        DB,
      );
      return r.series[0]?.values.some((v) => (v[1] as number) > 0) ? true : undefined;
    },
    25_000,
  );
}, 90_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await bridge?.stop();
  await stopAllCli();
  await watch?.close();
  await Promise.all([broker?.stop(), influx?.stop()]);
});

describe('Grafana provisioning files', () => {
  it('provisions the InfluxQL datasource with the compose stack values', () => {
    const doc = yaml('datasources/hostpulse.yaml');
    expect(at(doc, 'apiVersion')).toBe(1);
    const sources = list(at(doc, 'datasources'));
    expect(sources).toHaveLength(1);
    const ds = sources[0] as Yaml;
    expect(at(ds, 'name')).toBe('hostpulse');
    expect(at(ds, 'uid')).toBe(DS.uid);
    expect(at(ds, 'type')).toBe('influxdb');
    expect(at(ds, 'access')).toBe('proxy');
    expect(at(ds, 'url')).toBe('http://influxdb:8086');
    expect(at(ds, 'user')).toBe('${GRAFANA_INFLUX_USERNAME}');
    expect(at(ds, 'jsonData', 'dbName')).toBe('${INFLUX_BUCKET}');
    expect(at(ds, 'jsonData', 'httpMode')).toBe('POST');
    expect(at(ds, 'jsonData', 'version')).not.toBe('Flux');
    expect(at(ds, 'secureJsonData', 'password')).toBe('${GRAFANA_INFLUX_PASSWORD}');
    expect(at(ds, 'isDefault')).toBe(true);
    expect(at(ds, 'editable')).toBe(false);
    // Every $VAR Grafana expands here must be one the compose file passes to the container.
    const text = readFileSync(join(GRAFANA, 'provisioning/datasources/hostpulse.yaml'), 'utf8').replace(/^\s*#.*$/gm, '');
    expect(new Set([...text.matchAll(/\$\{?(\w+)/g)].map((m) => m[1]))).toEqual(
      new Set(['GRAFANA_INFLUX_USERNAME', 'INFLUX_BUCKET', 'GRAFANA_INFLUX_PASSWORD']),
    );
  });

  it('provisions the dashboards from the mounted folder into the hostpulse folder, read-only', () => {
    const doc = yaml('dashboards/hostpulse.yaml');
    expect(at(doc, 'apiVersion')).toBe(1);
    const providers = list(at(doc, 'providers'));
    expect(providers).toHaveLength(1);
    const p = providers[0] as Yaml;
    expect(at(p, 'type')).toBe('file');
    expect(at(p, 'folder')).toBe('hostpulse');
    expect(at(p, 'allowUiUpdates')).toBe(false);
    expect(at(p, 'options', 'path')).toBe('/var/lib/grafana/dashboards');
    expect(at(p, 'options', 'foldersFromFilesStructure')).toBe(false);
  });

  it('has the home dashboard at the path the compose file names', () => {
    const home = '/var/lib/grafana/dashboards/fleet-overview.json';
    const local = join(DASHBOARDS, home.slice('/var/lib/grafana/dashboards/'.length));
    expect(existsSync(local)).toBe(true);
    expect(readDashboard('fleet-overview.json').uid).toBe('hostpulse-fleet');
  });

  it('gives every dashboard a stable unique uid, schema 39, and the provisioned datasource on every panel and target', () => {
    expect(DASHBOARD_FILES).toEqual(['fleet-overview.json', 'host-detail.json', 'pipeline-health.json']);
    expect([...dashboards.values()].map((d) => d.uid)).toEqual(['hostpulse-fleet', 'hostpulse-host', 'hostpulse-pipeline']);
    for (const [file, d] of dashboards) {
      expect(d.schemaVersion, file).toBe(39);
      const panels = allPanels(d.panels);
      expect(new Set(panels.map((p) => p.id)).size, `${file}: unique panel ids`).toBe(panels.length);
      for (const p of panels) {
        expect(p.datasource, `${file} panel "${p.title}"`).toEqual(DS);
        if (p.type !== 'row') expect(targetsOf(p).length, `${file} panel "${p.title}" has queries`).toBeGreaterThan(0);
        for (const t of targetsOf(p)) {
          const where = `${file} panel "${p.title}" ${t.refId}`;
          expect(t.datasource, where).toEqual(DS);
          expect(t.rawQuery, where).toBe(true);
          const q = t.query ?? '';
          expect(q, where).toMatch(/^SELECT /);
          if (/GROUP BY time\(/.test(q)) {
            expect(q, where).toContain('$timeFilter');
            expect(q, where).toMatch(/GROUP BY time\(\$__interval\)/);
            expect(q, where).toMatch(/ fill\((null|none|previous|linear|0)\)$/);
          } else if (!q.includes('$timeFilter')) {
            // Only availability (written when it changes) and explicit "last N minutes" windows go without the dashboard's range.
            expect(q.includes('FROM "availability"') || /time > now\(\) - \d+m/.test(q), `${where}: no $timeFilter in ${q}`).toBe(true);
          }
        }
      }
      for (const v of d.templating?.list ?? []) {
        expect(v.type, `${file} variable ${v.name}`).toBe('query');
        expect(v.datasource, `${file} variable ${v.name}`).toEqual(DS);
        expect([1, 2], `${file} variable ${v.name} refreshes`).toContain(v.refresh);
        expect(variableQuery(v)).toMatch(/^SHOW TAG VALUES /);
      }
    }
    const host = dashboards.get('host-detail.json');
    expect(host?.templating?.list.find((v) => v.name === 'host')).toMatchObject({ query: 'SHOW TAG VALUES WITH KEY = "host"' });
    // Instances come from the data: one panel per GPU, filesystem and interface, repeated.
    const repeats = allPanels(host?.panels ?? [])
      .filter((p) => p.repeat)
      .map((p) => p.repeat);
    expect(new Set(repeats)).toEqual(new Set(['gpu', 'disk', 'iface']));
    // Every query shows the selected host only; a repeated panel, its own instance only.
    const tagOf: Record<string, string> = { gpu: 'gpu', disk: 'disk', iface: 'iface' };
    for (const p of allPanels(host?.panels ?? [])) {
      for (const t of targetsOf(p)) {
        expect(t.query, `host "${p.title}"`).toContain('"host" =~ /^$host$/');
        if (p.repeat) expect(t.query, `host "${p.title}"`).toContain(`"${tagOf[p.repeat]}" =~ /^$${p.repeat}$/`);
      }
    }
    for (const p of allPanels(host?.panels ?? [])) expect(p.title, 'no hard-coded instance').not.toMatch(/GPU \d|enp|wlp|boot_efi/);
  });

  it('links each fleet row to the host dashboard', () => {
    const links = [...dashboards.values()].flatMap((d) => allPanels(d.panels).flatMap(dataLinks));
    expect(links.length).toBeGreaterThan(0);
    for (const url of links) expect(url).toMatch(/^\/d\/hostpulse-host(\/[\w-]+)?\?var-host=\$\{__(data\.fields\.host|value\.raw|value\.text)\}/);
    const fleetLinks = allPanels(readDashboard('fleet-overview.json').panels).flatMap(dataLinks);
    expect(fleetLinks.length).toBeGreaterThan(0);
  });
});

describe('dashboard queries on the real pipeline', () => {
  const single = (value: string): VariableValue => ({ value, multi: false });
  const many = (values: readonly string[]): VariableValue => ({ value: values, multi: true });

  it("fills the template variables from the data: every host, and each host's GPUs, filesystems and interfaces", async () => {
    const host = dashboards.get('host-detail.json');
    const variable = (name: string): string => variableQuery(host?.templating?.list.find((v) => v.name === name) ?? { name, type: 'missing' });
    const hosts = await variableValues(variable('host'), {});
    expect(hosts).toEqual([...new Set(publishedSamples().map((p) => p.host))].sort());
    expect(hosts).toEqual(expect.arrayContaining([...AGENTS, SILENT, HOT]));
    for (const h of AGENTS) {
      for (const v of [single(h), many([h])]) {
        expect(await variableValues(variable('gpu'), { host: v }), `${h} gpus`).toEqual(instancesOf(h, 'gpu'));
        expect(await variableValues(variable('disk'), { host: v }), `${h} disks`).toEqual(instancesOf(h, 'disk'));
        expect(await variableValues(variable('iface'), { host: v }), `${h} interfaces`).toEqual(instancesOf(h, 'net'));
      }
    }
    expect(await variableValues(variable('gpu'), { host: single(WORKSTATION) })).toEqual(['0', '1']);
    expect(await variableValues(variable('disk'), { host: single(WORKSTATION) })).toEqual(['boot', 'boot_efi', 'root']);
    expect(await variableValues(variable('iface'), { host: single(WORKSTATION) })).toEqual(['enp14s0']);
    expect(await variableValues(variable('gpu'), { host: single(STOPPED) })).toEqual([]);
    // Several hosts at once, as a regex.
    expect(await variableValues(variable('disk'), { host: many(AGENTS) })).toEqual([...new Set(AGENTS.flatMap((h) => instancesOf(h, 'disk')))].sort());
    const bridges = await variableValues(variableQuery(dashboards.get('pipeline-health.json')?.templating?.list[0] ?? { name: 'bridge', type: 'missing' }), {});
    expect(bridges).toEqual([BRIDGE]);
  });

  it('answers every query of the fleet overview, for every host, and the table merges into one row per host', async () => {
    const d = readDashboard('fleet-overview.json');
    let queries = 0;
    for (const p of allPanels(d.panels)) {
      for (const t of targetsOf(p)) {
        expect(variablesIn(t.query ?? ''), 'the fleet needs no variables').toEqual([]);
        await check(`fleet "${p.title}" ${t.refId}`, t.query ?? '', {});
        queries++;
      }
    }
    expect(queries).toBeGreaterThanOrEqual(10);

    // The table as Grafana builds it: Time dropped per frame, merged on host, hottest first.
    const table = allPanels(d.panels).find((p) => p.type === 'table');
    expect(table?.transformations?.map((x) => x.id)).toEqual(['organize', 'merge', 'calculateField', 'sortBy', 'organize']);
    const merged = new Map<string, Record<string, unknown>>();
    for (const t of targetsOf(table as Panel)) {
      expect(t.resultFormat).toBe('table');
      for (const s of (await influx.query(interpolate(t.query ?? '', {}, MACROS), DB)).series) {
        const h = s.tags?.['host'] as string;
        for (const r of rows(s)) {
          const { time: _time, ...fields } = r;
          merged.set(h, { ...merged.get(h), ...fields });
        }
      }
    }
    for (const h of AGENTS) {
      const row = merged.get(h);
      expect(row, h).toMatchObject({
        cpu_usage: expect.any(Number),
        mem_usage: expect.any(Number),
        disk_usage: expect.any(Number),
        cpu_temp: expect.any(Number),
      });
      expect(row?.['samples_5m'], `${h} reporting`).toBeGreaterThan(0);
      expect(row?.['online'], `${h} status`).toBe(h === STOPPED ? 0 : 1);
      expect(row?.['gpu_temp'] !== undefined, `${h} GPU`).toBe(instancesOf(h, 'gpu').length > 0);
    }
    expect(merged.get(WORKSTATION)?.['gpu_temp']).toBe(50); // the hotter of its two GPUs
    expect(merged.get(WORKSTATION)?.['disk_usage']).toBe(41.31); // its fullest filesystem
    expect(merged.get(SILENT)?.['samples_5m']).toBeUndefined(); // silent: shown as such
    expect(merged.get(HOT)?.['cpu_temp']).toBe(91.5);
  });

  it('answers every query of the host dashboard for each host, one host or several, and each repeated GPU, filesystem and interface panel', async () => {
    const d = readDashboard('host-detail.json');
    const vars = d.templating?.list ?? [];
    const instanceVars = vars.filter((v) => v.name !== 'host');
    const selections: [string, VariableValue][] = [...AGENTS.map((h): [string, VariableValue] => [h, single(h)]), ['all agents', many(AGENTS)]];
    let queries = 0;
    for (const [label, hostValue] of selections) {
      // Dependent variables refresh from the data for the selected host(s); "All" selects every value.
      const base: Record<string, VariableValue> = { host: hostValue };
      const values: Record<string, string[]> = {};
      for (const v of instanceVars) {
        values[v.name] = await variableValues(variableQuery(v), base);
        base[v.name] = many(values[v.name] ?? []);
      }
      for (const p of allPanels(d.panels)) {
        const repeats = p.repeat ? (values[p.repeat] ?? []) : [undefined];
        for (const instance of repeats) {
          const vs: Record<string, VariableValue> = {
            ...base,
            ...(p.repeat && instance !== undefined ? { [p.repeat]: { value: instance, multi: true } } : {}),
          };
          for (const t of targetsOf(p)) {
            const series = await check(
              `host "${p.title}" ${t.refId} for ${label}${instance !== undefined ? ` ${p.repeat}=${instance}` : ''}`,
              t.query ?? '',
              vs,
            );
            if (p.repeat && hostValue.multi === false) expect(series.length, `${p.title} for ${label} ${instance}`).toBeGreaterThan(0);
            queries++;
          }
        }
      }
    }
    expect(queries).toBeGreaterThan(60);
  });

  it('answers every query of the pipeline dashboard, with the rejections by reason', async () => {
    const d = readDashboard('pipeline-health.json');
    for (const bridgeValue of [many([BRIDGE]), single(BRIDGE)]) {
      for (const p of allPanels(d.panels)) {
        for (const t of targetsOf(p)) {
          const series = await check(`pipeline "${p.title}" ${t.refId}`, t.query ?? '', { bridge: bridgeValue });
          if (/non_negative_derivative\(last\("rejected_/.test(t.query ?? '')) {
            const byReason = Object.fromEntries((series[0]?.columns ?? []).map((c, i) => [c, (series[0]?.values ?? []).some((v) => (v[i] as number) > 0)]));
            for (const reason of ['unknown_metric', 'bad_payload', 'out_of_range', 'bad_host', 'bad_timestamp'])
              expect(byReason[`rejected_${reason}`], reason).toBe(true);
            expect(byReason['rejected_too_large']).toBe(false);
          }
          if (/non_negative_derivative\(last\("received"\)/.test(t.query ?? '')) {
            const i = series[0]?.columns.indexOf('received') ?? -1;
            expect(series[0]?.values.some((v) => (v[i] as number) > 0)).toBe(true);
          }
        }
      }
    }
    const reasons = JSON.stringify(d);
    for (const r of REJECT_REASONS) expect(reasons, `reason ${r} charted`).toContain(`rejected_${r}`);
  });
});

describe('alert rules', () => {
  const doc = yaml('alerting/hostpulse.yaml');
  const group = list(at(doc, 'groups'))[0] as Yaml;
  const rules = list(at(group, 'rules'));
  /** Which hosts (and instances) each rule fires for, on the data this test publishes. */
  const FIRES: Record<string, string[]> = {
    'hostpulse-cpu-temp-high': [HOT],
    'hostpulse-gpu-temp-high': [`${HOT}/0`],
    'hostpulse-host-silent': [SILENT],
    'hostpulse-disk-full': [`${HOT}/root`],
  };

  it('is one group in the hostpulse folder, evaluated every minute, with every required key', () => {
    expect(at(doc, 'apiVersion')).toBe(1);
    expect(list(at(doc, 'groups'))).toHaveLength(1);
    expect(at(group, 'orgId')).toBe(1);
    expect(at(group, 'name')).toBe('hostpulse');
    expect(at(group, 'folder')).toBe('hostpulse');
    expect(at(group, 'interval')).toBe('1m');
    expect(rules.map((r) => at(r, 'uid'))).toEqual(Object.keys(FIRES));
    for (const rule of rules) {
      const uid = String(at(rule, 'uid'));
      const data = list(at(rule, 'data'));
      const refIds = data.map((d) => String(at(d, 'refId')));
      expect(new Set(refIds).size, uid).toBe(refIds.length);
      expect(refIds, `${uid}: condition names a refId`).toContain(at(rule, 'condition'));
      expect(String(at(rule, 'title')).length).toBeGreaterThan(0);
      expect(at(rule, 'for')).toMatch(/^\d+[smh]$/);
      expect(['OK', 'NoData', 'Alerting', 'KeepLast']).toContain(at(rule, 'noDataState'));
      expect(['OK', 'Error', 'Alerting', 'KeepLast']).toContain(at(rule, 'execErrState'));
      const labels = at(rule, 'labels') as Record<string, Yaml>;
      expect(Object.keys(labels).length).toBeGreaterThan(0);
      for (const v of Object.values(labels)) expect(String(v), `${uid}: labels are env-expanded, no $`).not.toContain('$');
      const annotations = at(rule, 'annotations') as Record<string, Yaml>;
      expect(String(at(annotations, 'summary'))).toContain('{{ $labels.host }}');
      for (const v of Object.values(annotations)) expect(String(v), `${uid}: no \${VAR} in annotations`).not.toContain('${');
      for (const d of data) {
        const refId = String(at(d, 'refId'));
        expect(at(d, 'model', 'refId'), `${uid} ${refId}`).toBe(refId);
        expect(typeof at(d, 'relativeTimeRange', 'from')).toBe('number');
        expect(typeof at(d, 'relativeTimeRange', 'to')).toBe('number');
        const source = at(d, 'datasourceUid');
        if (source === '__expr__') {
          expect(['reduce', 'threshold', 'math']).toContain(at(d, 'model', 'type'));
          expect(refIds, `${uid} ${refId}: its expression names a refId`).toContain(at(d, 'model', 'expression'));
        } else {
          expect(source, `${uid} ${refId}`).toBe(DS.uid);
          expect(at(d, 'model', 'datasource')).toEqual(DS);
          expect(at(d, 'model', 'rawQuery')).toBe(true);
          expect(String(at(d, 'model', 'query'))).toContain('$timeFilter');
        }
      }
    }
  });

  it.each(rules.map((r) => [String(at(r, 'uid')), r] as const))(
    '%s: its query answers on the real data and its condition fires only where it should',
    async (uid, rule) => {
      const data = list(at(rule, 'data'));
      /** refId → label set → values (queries) or one number (expressions). */
      const results = new Map<string, Map<string, number | null>>();
      for (const d of data) {
        const refId = String(at(d, 'refId'));
        const model = at(d, 'model');
        if (at(d, 'datasourceUid') !== '__expr__') {
          const from = Number(at(d, 'relativeTimeRange', 'from'));
          const to = Number(at(d, 'relativeTimeRange', 'to'));
          const query = String(at(model, 'query'));
          const q = interpolate(
            query,
            {},
            { timeFilter: `time >= now() - ${from}s${to > 0 ? ` AND time <= now() - ${to}s` : ''}`, intervalMs: Number(at(model, 'intervalMs')) },
          );
          const series = await check(`rule ${uid} ${refId}`, query, {}, Number(at(model, 'intervalMs')));
          expect(series.length, `${uid}: ${q}`).toBeGreaterThan(0);
          const byLabels = new Map<string, number | null>();
          for (const s of series) {
            const { host: seriesHost, ...instance } = s.tags ?? {};
            const key = [seriesHost, ...Object.values(instance)].join('/');
            const values = s.values.map((v) => v[1] as number | null).filter((v) => v !== null);
            byLabels.set(key, values.at(-1) ?? null); // reduce "last", dropping nulls, happens below; keep the last non-null
          }
          results.set(refId, byLabels);
          continue;
        }
        const type = at(model, 'type');
        const input = results.get(String(at(model, 'expression')));
        expect(input, `${uid} ${refId} input`).toBeDefined();
        const out = new Map<string, number | null>();
        if (type === 'reduce') {
          expect(at(model, 'reducer')).toBe('last');
          expect(at(model, 'settings', 'mode')).toBe('dropNN');
          for (const [k, v] of input ?? []) out.set(k, v);
        } else if (type === 'threshold') {
          const evaluator = at(list(at(model, 'conditions'))[0] as Yaml, 'evaluator');
          const op = at(evaluator, 'type');
          const limit = Number(list(at(evaluator, 'params'))[0]);
          for (const [k, v] of input ?? []) out.set(k, v === null ? null : (op === 'gt' ? v > limit : op === 'lt' ? v < limit : Number.NaN) ? 1 : 0);
          expect(['gt', 'lt']).toContain(op);
        } else {
          throw new Error(`${uid}: expression ${String(type)} not evaluated by this test`);
        }
        results.set(refId, out);
      }
      const condition = results.get(String(at(rule, 'condition')));
      const firing = [...(condition ?? [])]
        .filter(([, v]) => v === 1)
        .map(([k]) => k)
        .sort();
      expect(firing, `${uid} fires for`).toEqual(FIRES[uid]);
      // And it sees the healthy hosts too, so not firing for them means something.
      const evaluated = [...(condition?.keys() ?? [])].map((k) => k.split('/')[0]);
      const query = String(at(data.find((d) => at(d, 'datasourceUid') !== '__expr__') as Yaml, 'model', 'query'));
      const { measurement, fields } = readsOf(query);
      const publishers = AGENTS.filter((h) => publishedSamples().some((p) => p.host === h && p.measurement === measurement && fields.includes(p.field)));
      expect(publishers.length, `${uid}: some agent publishes what it reads`).toBeGreaterThan(0);
      for (const h of publishers) expect(evaluated, `${uid} evaluates ${h}`).toContain(h);
    },
  );
});
