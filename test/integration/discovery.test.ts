/**
 * Home Assistant MQTT discovery on a real Mosquitto, with real agents (the built CLI) replaying
 * recorded machines. A subscriber acting as Home Assistant collects the retained configs, checks
 * each against Home Assistant's documented MQTT sensor / binary_sensor schema, and renders each
 * value_template against the real samples on its state_topic.
 *
 * The schema facts below come from home-assistant/core:
 * - homeassistant/components/mqtt/discovery.py: topic `<prefix>/<component>/[<node_id>/]<object_id>/config`,
 *   node_id and object_id in [a-zA-Z0-9_-].
 * - homeassistant/components/mqtt/sensor.py (_PLATFORM_SCHEMA_BASE, validate_sensor_state_and_device_class_config),
 *   binary_sensor.py, schemas.py (MQTT_ENTITY_COMMON_SCHEMA, device and origin blocks): keys and types.
 * - homeassistant/components/sensor/const.py: DEVICE_CLASS_UNITS, DEVICE_CLASS_STATE_CLASSES
 *   (the classes hostpulse uses), SensorStateClass; homeassistant/const.py: UnitOf* values.
 * - homeassistant/components/binary_sensor/__init__.py: BinarySensorDeviceClass.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.js';
import { Discovery } from '../../agent/homeassistant/discovery.js';
import { deviceBlock, originBlock } from '../../agent/homeassistant/entities.js';
import type { Recording } from '../../agent/probe/index.js';
import { Sampler } from '../../agent/sampler.js';
import { MqttConnection } from '../../common/mqtt.js';
import { runCli, stopAllCli, type Running } from '../harness/cli.js';
import { captureLogger } from '../harness/logs.js';
import { startMosquitto, type Mosquitto } from '../harness/mosquitto.js';
import { capture, mosquittoPub, waitFor, type Capture, type Captured } from '../harness/mqtt.js';
import { tempDir } from '../harness/process.js';

const FIXTURES = new URL('../fixtures/machines/', import.meta.url);
const fixture = (name: string): string => new URL(`${name}.json`, FIXTURES).pathname;

// ---- Home Assistant's schema, as far as hostpulse's configs touch it ----------------------------

const DISCOVERY_TOPIC = /^(?<prefix>[^/]+)\/(?<component>\w+)\/(?<node>[a-zA-Z0-9_-]+)\/(?<object>[a-zA-Z0-9_-]+)\/config$/;
const INFORMATION = [
  'bit',
  'kbit',
  'Mbit',
  'Gbit',
  'B',
  'kB',
  'MB',
  'GB',
  'TB',
  'PB',
  'EB',
  'ZB',
  'YB',
  'KiB',
  'MiB',
  'GiB',
  'TiB',
  'PiB',
  'EiB',
  'ZiB',
  'YiB',
];
const DATA_RATE = ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s', 'B/s', 'kB/s', 'MB/s', 'GB/s', 'KiB/s', 'MiB/s', 'GiB/s'];
const ALL_STATE_CLASSES = ['measurement', 'total', 'total_increasing'];
/** DEVICE_CLASS_UNITS and DEVICE_CLASS_STATE_CLASSES for the sensor device classes a PC can have. */
const SENSOR_CLASSES: Record<string, { units: readonly string[]; stateClasses: readonly string[] }> = {
  temperature: { units: ['°C', '°F', 'K'], stateClasses: ['measurement'] },
  data_size: { units: INFORMATION, stateClasses: ALL_STATE_CLASSES },
  data_rate: { units: DATA_RATE, stateClasses: ['measurement'] },
  power: { units: ['mW', 'W', 'kW', 'MW', 'GW', 'TW', 'BTU/h'], stateClasses: ['measurement'] },
  battery: { units: ['%'], stateClasses: ['measurement'] },
  duration: { units: ['d', 'h', 'min', 's', 'ms'], stateClasses: ALL_STATE_CLASSES },
};
const BINARY_CLASSES = [
  'battery',
  'battery_charging',
  'carbon_monoxide',
  'cold',
  'connectivity',
  'door',
  'garage_door',
  'gas',
  'heat',
  'light',
  'lock',
  'moisture',
  'motion',
  'moving',
  'occupancy',
  'opening',
  'plug',
  'power',
  'presence',
  'problem',
  'running',
  'safety',
  'smoke',
  'sound',
  'tamper',
  'update',
  'vibration',
  'window',
];
const COMMON_KEYS = [
  'name',
  'unique_id',
  'state_topic',
  'value_template',
  'device_class',
  'expire_after',
  'force_update',
  'availability_topic',
  'payload_available',
  'payload_not_available',
  'availability',
  'availability_mode',
  'availability_template',
  'entity_category',
  'device',
  'origin',
  'icon',
  'qos',
  'enabled_by_default',
  'json_attributes_topic',
  'json_attributes_template',
  'encoding',
  'object_id',
  'default_entity_id',
  'entity_picture',
];
const SENSOR_KEYS = new Set([...COMMON_KEYS, 'unit_of_measurement', 'state_class', 'suggested_display_precision', 'last_reset_value_template', 'options']);
const BINARY_KEYS = new Set([...COMMON_KEYS, 'payload_on', 'payload_off', 'off_delay']);
const DEVICE_KEYS = new Set([
  'identifiers',
  'connections',
  'name',
  'manufacturer',
  'model',
  'model_id',
  'sw_version',
  'hw_version',
  'serial_number',
  'suggested_area',
  'configuration_url',
  'via_device',
]);
const ORIGIN_KEYS = new Set(['name', 'sw_version', 'support_url']);

type Config = Record<string, unknown>;
const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isTopic = (v: unknown): v is string => isString(v) && !/[+#\0]/.test(v);
const isNonNegativeInt = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 0;

/** Everything Home Assistant would refuse or ignore in one discovery message; empty when valid. */
function schemaProblems(topic: string, config: Config): string[] {
  const problems: string[] = [];
  const problem = (what: string): number => problems.push(`${topic}: ${what}`);
  const m = DISCOVERY_TOPIC.exec(topic);
  const component = m?.groups?.['component'];
  if (!m || (component !== 'sensor' && component !== 'binary_sensor')) return [`${topic}: not a sensor or binary_sensor discovery topic`];
  const keys = component === 'sensor' ? SENSOR_KEYS : BINARY_KEYS;
  for (const key of Object.keys(config)) if (!keys.has(key)) problem(`unknown key ${key}`);
  if (!isTopic(config['state_topic'])) problem('state_topic is required, a topic without wildcards');
  for (const key of ['name', 'unique_id', 'value_template', 'payload_available', 'payload_not_available', 'payload_on', 'payload_off']) {
    if (key in config && !isString(config[key])) problem(`${key} must be a string`);
  }
  if ('availability_topic' in config && !isTopic(config['availability_topic'])) problem('availability_topic must be a topic');
  if ('expire_after' in config && !(isNonNegativeInt(config['expire_after']) && (config['expire_after'] as number) > 0))
    problem('expire_after must be a positive integer');
  if ('entity_category' in config && config['entity_category'] !== 'diagnostic') problem('entity_category of a sensor must be diagnostic');
  const device = config['device'] as Config | undefined;
  if (typeof device !== 'object' || device === null) problem('device block missing');
  else {
    for (const key of Object.keys(device)) if (!DEVICE_KEYS.has(key)) problem(`unknown device key ${key}`);
    const ids = device['identifiers'];
    if (!Array.isArray(ids) || ids.length === 0 || !ids.every(isString)) problem('device.identifiers must be a list of strings');
    for (const key of ['name', 'manufacturer', 'model', 'sw_version', 'hw_version'])
      if (key in device && !isString(device[key])) problem(`device.${key} must be a string`);
  }
  const origin = config['origin'] as Config | undefined;
  if (typeof origin !== 'object' || origin === null || !isString(origin['name'])) problem('origin.name is required');
  else for (const key of Object.keys(origin)) if (!ORIGIN_KEYS.has(key)) problem(`unknown origin key ${key}`);
  const dc = config['device_class'];
  if (component === 'sensor') {
    const unit = config['unit_of_measurement'];
    if (dc !== undefined) {
      const allowed = SENSOR_CLASSES[dc as string];
      if (!allowed) problem(`device_class ${String(dc)} is not a sensor class this test knows`);
      else {
        if (!allowed.units.includes(unit as string)) problem(`unit ${String(unit)} is not allowed for device_class ${String(dc)}`);
        if (config['state_class'] !== undefined && !allowed.stateClasses.includes(config['state_class'] as string))
          problem(`state_class ${String(config['state_class'])} not allowed for ${String(dc)}`);
      }
    }
    if (!ALL_STATE_CLASSES.includes(config['state_class'] as string)) problem(`state_class must be one of ${ALL_STATE_CLASSES.join(', ')}`);
    if ('suggested_display_precision' in config && !isNonNegativeInt(config['suggested_display_precision']))
      problem('suggested_display_precision must be a whole number ≥ 0');
    if (unit !== undefined && !isString(unit)) problem('unit_of_measurement must be a non-empty string');
  } else if (dc !== undefined && !BINARY_CLASSES.includes(dc as string)) problem(`device_class ${String(dc)} is not a binary_sensor class`);
  return problems;
}

/** Renders exactly the value templates hostpulse emits, as Home Assistant's Jinja would. */
function render(template: string, payload: string): string {
  const json = JSON.parse(payload) as { value: unknown };
  if (template === '{{ value_json.value }}') return String(json.value);
  if (template === "{{ 'ON' if value_json.value == 1 else 'OFF' }}") return json.value === 1 ? 'ON' : 'OFF';
  throw new Error(`template not understood by this test: ${template}`);
}

/** The state Home Assistant derives from one message on the state topic. */
function stateOf(component: string, config: Config, payload: string): string {
  const rendered = typeof config['value_template'] === 'string' ? render(config['value_template'], payload) : payload;
  if (component === 'binary_sensor') {
    const on = (config['payload_on'] as string | undefined) ?? 'ON';
    const off = (config['payload_off'] as string | undefined) ?? 'OFF';
    return rendered === on ? 'on' : rendered === off ? 'off' : `invalid:${rendered}`;
  }
  return rendered;
}

// ---- Helpers ------------------------------------------------------------------------------------

let broker: Mosquitto;
let all: Capture; // one subscription to '#': every config and sample, in arrival order

/** What a Home Assistant that (re)starts now receives: the retained configs of one host. */
async function retainedConfigs(host: string, prefix = 'homeassistant'): Promise<Map<string, Config>> {
  const ha = await capture(broker.url, `${prefix}/#`);
  await new Promise((r) => setTimeout(r, 800));
  await ha.close();
  const configs = new Map<string, Config>();
  for (const m of ha.messages) if (m.topic.split('/')[2] === host && m.payload !== '') configs.set(m.topic, JSON.parse(m.payload) as Config);
  return configs;
}

const configsOf = (host: string, messages: readonly Captured[] = all.messages): Captured[] =>
  messages.filter((m) => m.topic.startsWith('homeassistant/') && m.topic.split('/')[2] === host);
const samplesOf = (host: string): Captured[] => all.messages.filter((m) => m.topic.startsWith(`sensors/${host}/`) && !m.topic.endsWith('/availability'));

function agent(host: string, file: string, env: Record<string, string> = {}): Running {
  return runCli(['agent', '--replay', file, '--host', host], { MQTT_URL: broker.url, SAMPLE_INTERVAL: '1s', ...env });
}

const synced = (run: Running, count = 1): Promise<unknown> =>
  waitFor(`discovery sync #${count}`, () => (run.logs().filter((l) => l.msg === 'discovery configs in step').length >= count ? true : undefined));

async function rounds(host: string, n: number): Promise<void> {
  const start = samplesOf(host).length;
  const perRound = await waitFor(`a round of ${host}`, () => (samplesOf(host).length > start ? samplesOf(host).length - start : undefined));
  await waitFor(`${n} rounds of ${host}`, () => (samplesOf(host).length >= start + n * perRound ? true : undefined), 20_000);
}

beforeAll(async () => {
  broker = await startMosquitto();
  all = await capture(broker.url, '#');
});

afterAll(async () => {
  await stopAllCli();
  await all?.close();
  await broker?.stop();
});

// ---- Tests --------------------------------------------------------------------------------------

describe('the schema check of this test', () => {
  it('finds what Home Assistant would refuse', () => {
    const device = { identifiers: ['x'], name: 'x' };
    const origin = { name: 'hostpulse' };
    const good = {
      name: 'CPU temperature',
      unique_id: 'u',
      state_topic: 'sensors/x/cpu_temp',
      device_class: 'temperature',
      unit_of_measurement: '°C',
      state_class: 'measurement',
      device,
      origin,
    };
    expect(schemaProblems('homeassistant/sensor/x/cpu_temp/config', good)).toEqual([]);
    expect(schemaProblems('homeassistant/sensor/x/cpu.temp/config', good)).toHaveLength(1);
    expect(schemaProblems('homeassistant/sensor/x/cpu_temp/config', { ...good, unit_of_measurement: '%' })).toHaveLength(1);
    expect(schemaProblems('homeassistant/sensor/x/cpu_temp/config', { ...good, state_class: 'total_increasing' })).toContain(
      'homeassistant/sensor/x/cpu_temp/config: state_class total_increasing not allowed for temperature',
    );
    expect(schemaProblems('homeassistant/sensor/x/cpu_temp/config', { ...good, state_topic: 'sensors/+/cpu_temp', origin: {} })).toHaveLength(2);
    expect(schemaProblems('homeassistant/binary_sensor/x/c/config', { ...good, device_class: 'battery_charging' })).toEqual([
      'homeassistant/binary_sensor/x/c/config: unknown key unit_of_measurement',
      'homeassistant/binary_sensor/x/c/config: unknown key state_class',
    ]);
    expect(stateOf('binary_sensor', { value_template: "{{ 'ON' if value_json.value == 1 else 'OFF' }}" }, '{"value":1,"ts":1,"seq":0}')).toBe('on');
    expect(stateOf('sensor', { value_template: '{{ value_json.value }}' }, '{"value":42.5,"ts":1,"unit":"°C","seq":0}')).toBe('42.5');
  });
});

describe('Home Assistant discovery of recorded machines', () => {
  const machines = [
    ['linux-laptop', 'ha-laptop'],
    ['windows-laptop', 'ha-windows'],
    ['linux-2gpu-workstation', 'ha-workstation'],
  ] as const;
  const running = new Map<string, Running>();

  beforeAll(async () => {
    for (const [file, host] of machines) running.set(host, agent(host, fixture(file)));
    for (const [, host] of machines) {
      await synced(running.get(host) as Running);
      await rounds(host, 2);
    }
  });

  afterAll(async () => {
    for (const run of running.values()) await run.stop();
  });

  it.each(machines)('%s: one valid config per published metric, each template giving a number from the real samples', async (file, host) => {
    const configs = await retainedConfigs(host);
    const metrics = new Set(samplesOf(host).map((m) => m.topic.split('/')[2] as string));
    const expected = [...metrics, 'online'].sort();
    expect([...configs.keys()].map((t) => t.split('/')[3]).sort()).toEqual(expected);

    const problems = [...configs].flatMap(([topic, config]) => schemaProblems(topic, config));
    expect(problems).toEqual([]);
    const uniqueIds = [...configs.values()].map((c) => c['unique_id']);
    expect(new Set(uniqueIds).size).toBe(uniqueIds.length);

    for (const [topic, config] of configs) {
      const component = topic.split('/')[1] as string;
      const objectId = topic.split('/')[3] as string;
      expect(config['unique_id']).toBe(`hostpulse_${host}_${objectId}`);
      expect(config['device']).toMatchObject({ identifiers: [`hostpulse_${host}`], name: host });
      const states = all.messages.filter((m) => m.topic === config['state_topic']).map((m) => stateOf(component, config, m.payload));
      expect(states.length, `${topic}: messages on ${String(config['state_topic'])}`).toBeGreaterThan(0);
      for (const state of states) {
        if (component === 'binary_sensor') expect(['on', 'off'], `${topic} → ${state}`).toContain(state);
        else expect(Number.isFinite(Number(state)) && state.trim() !== '', `${topic} → ${state}`).toBe(true);
      }
      if (objectId === 'online') expect(config).toMatchObject({ device_class: 'connectivity', state_topic: `sensors/${host}/availability` });
      else expect(config).toMatchObject({ state_topic: `sensors/${host}/${objectId}`, availability_topic: `sensors/${host}/availability`, expire_after: 30 });
    }
    const recording = JSON.parse(await readFile(fixture(file), 'utf8')) as Recording;
    const maker = recording.static.system['manufacturer'];
    expect((configs.values().next().value as Config)['device']).toMatchObject({ manufacturer: maker });
  });

  it('classes the battery and GPU metrics as Home Assistant expects', async () => {
    const laptop = await retainedConfigs('ha-laptop');
    expect(laptop.get('homeassistant/binary_sensor/ha-laptop/battery_charging/config')).toMatchObject({ device_class: 'battery_charging' });
    expect(laptop.get('homeassistant/sensor/ha-laptop/battery_level/config')).toMatchObject({ device_class: 'battery', unit_of_measurement: '%' });
    const workstation = await retainedConfigs('ha-workstation');
    expect(workstation.get('homeassistant/sensor/ha-workstation/gpu1_temp/config')).toMatchObject({
      name: 'GPU 1 temperature',
      device_class: 'temperature',
      unit_of_measurement: '°C',
    });
    expect(workstation.get('homeassistant/sensor/ha-workstation/uptime/config')).toMatchObject({
      device_class: 'duration',
      unit_of_measurement: 's',
      entity_category: 'diagnostic',
    });
  });

  it('publishes each config before the first sample of its metric', () => {
    for (const [, host] of machines) {
      const firstConfig = new Map<string, number>();
      const firstSample = new Map<string, number>();
      all.messages.forEach((m, i) => {
        const parts = m.topic.split('/');
        if (parts[0] === 'homeassistant' && parts[2] === host && !firstConfig.has(parts[3] as string)) firstConfig.set(parts[3] as string, i);
        if (parts[0] === 'sensors' && parts[1] === host && !firstSample.has(parts[2] as string)) firstSample.set(parts[2] as string, i);
      });
      for (const [metric, at] of firstSample) {
        if (metric === 'availability') continue;
        expect(firstConfig.get(metric), `${host}/${metric}`).toBeLessThan(at);
      }
    }
  });

  it('answers Home Assistant’s birth message with every config and the availability, after a random delay', async () => {
    const counts = new Map<string, number>();
    for (const [, host] of machines) counts.set(host, (await retainedConfigs(host)).size);
    const from = all.messages.length;
    const sentAt = Date.now();
    await mosquittoPub(broker.port, 'homeassistant/status', 'online');
    const since = (): Captured[] => all.messages.slice(from);
    for (const [host, count] of counts) {
      await waitFor(`every config of ${host} again`, () => (configsOf(host, since()).length >= count ? true : undefined), 10_000);
    }
    await new Promise((r) => setTimeout(r, 300));
    for (const [host, count] of counts) {
      const again = configsOf(host, since());
      expect(again, host).toHaveLength(count); // each once
      expect(new Set(again.map((m) => m.topic)).size).toBe(count);
      expect(again.every((m) => m.at - sentAt <= 5000 + 1000)).toBe(true); // within the 0–5 s delay
      expect(since().some((m) => m.topic === `sensors/${host}/availability` && m.payload === 'online')).toBe(true);
    }
  });

  it('restarted with the same machine, publishes no config again', async () => {
    const host = 'ha-windows';
    await (running.get(host) as Running).stop();
    const from = all.messages.length;
    const run = agent(host, fixture('windows-laptop'));
    running.set(host, run);
    await synced(run);
    await rounds(host, 4);
    expect(configsOf(host, all.messages.slice(from))).toEqual([]);
    expect(run.logs().find((l) => l.msg === 'discovery configs in step')).toMatchObject({ published: 0, cleared: 0 });
  });

  it('restarted on a machine that lost a GPU and a disk, removes exactly those entities', async () => {
    const host = 'ha-workstation';
    const before = await retainedConfigs(host);
    const dir = await tempDir('discovery');
    const recording = JSON.parse(await readFile(fixture('linux-2gpu-workstation'), 'utf8')) as Recording;
    const smaller: Recording = {
      ...recording,
      rounds: recording.rounds.map((r) => ({
        ...r,
        nvidiaSmi: (r.nvidiaSmi ?? '')
          .split('\n')
          .filter((l) => !l.includes('00000000:02:00.0'))
          .join('\n'),
        fsSize: r.fsSize.filter((fs) => fs.mount !== '/boot'),
      })),
    };
    const file = join(dir, 'one-gpu.json');
    await writeFile(file, JSON.stringify(smaller));
    await (running.get(host) as Running).stop();
    const from = all.messages.length;
    const run = agent(host, file);
    running.set(host, run);
    await waitFor('the removal', () => (run.logs().some((l) => l.msg.startsWith('removed discovery configs')) ? true : undefined), 20_000);
    await rounds(host, 2);
    const gone = [...before.keys()].filter((t) => /\/(gpu1_[a-z_]+|disk_boot_[a-z]+)\/config$/.test(t)).sort();
    expect(gone).toEqual(
      expect.arrayContaining(['homeassistant/sensor/ha-workstation/gpu1_temp/config', 'homeassistant/sensor/ha-workstation/disk_boot_usage/config']),
    );
    const published = configsOf(host, all.messages.slice(from));
    expect(
      published
        .filter((m) => m.payload === '')
        .map((m) => m.topic)
        .sort(),
    ).toEqual(gone);
    expect(published.filter((m) => m.payload !== '')).toEqual([]);
    const after = await retainedConfigs(host);
    expect([...after.keys()].sort()).toEqual([...before.keys()].filter((t) => !gone.includes(t)).sort());
    await rm(dir, { recursive: true, force: true });
  });
});

describe('discovery settings and reconnects', () => {
  it('HA_DISCOVERY=false publishes no config; HA_DISCOVERY_PREFIX moves them and the birth topic', async () => {
    const off = agent('ha-off', fixture('linux-laptop'), { HA_DISCOVERY: 'false' });
    const custom = agent('ha-custom', fixture('linux-laptop'), { HA_DISCOVERY_PREFIX: 'hass-test' });
    await synced(custom);
    await rounds('ha-off', 3);
    expect(all.messages.filter((m) => m.topic.split('/')[2] === 'ha-off' && !m.topic.startsWith('sensors/'))).toEqual([]);
    const configs = await retainedConfigs('ha-custom', 'hass-test');
    expect(configs.size).toBeGreaterThan(10);
    expect(all.messages.some((m) => m.topic.startsWith('homeassistant/') && m.topic.includes('/ha-custom/'))).toBe(false);
    const from = all.messages.length;
    await mosquittoPub(broker.port, 'hass-test/status', 'online');
    await waitFor(
      'configs under hass-test again',
      () => (all.messages.slice(from).filter((m) => m.topic.startsWith('hass-test/')).length >= configs.size ? true : undefined),
      10_000,
    );
    await Promise.all([off.stop(), custom.stop()]);
  });

  it('publishes the configs again after a broker restart that lost them', async () => {
    // `start` after `halt` is a new process: the handle to stop is the one it returns.
    let own = await startMosquitto();
    try {
      const run = runCli(['agent', '--replay', fixture('linux-laptop'), '--host', 'ha-restart'], { MQTT_URL: own.url, SAMPLE_INTERVAL: '1s' });
      const first = await capture(own.url, '#');
      await synced(run);
      // Every config in step before the restart: the rate metrics come with the second round, the
      // round that may clear stale configs is the third; past the fourth the agent has nothing more
      // to publish, so what the new broker holds is what the sync after the reconnect published.
      await waitFor('four rounds', () => (first.messages.filter((m) => m.topic === 'sensors/ha-restart/uptime').length >= 4 ? true : undefined), 20_000);
      const before = new Set(configsOf('ha-restart', first.messages).map((m) => m.topic));
      await first.close();
      await own.halt(); // no persistence: the retained configs are gone
      own = await own.start();
      await synced(run, 2);
      const ha = await capture(own.url, 'homeassistant/#');
      await waitFor('every config retained again', () => (ha.messages.length >= before.size ? true : undefined), 5000);
      await new Promise((r) => setTimeout(r, 500));
      expect(new Set(ha.messages.map((m) => m.topic))).toEqual(before);
      expect(ha.messages.every((m) => m.payload !== '')).toBe(true);
      expect(run.logs().filter((l) => l.msg === 'discovery configs in step')[1]).toMatchObject({ published: before.size, unchanged: 0 });
      await ha.close();
      await run.stop();
    } finally {
      await own.stop();
    }
  });

  it('announces every config again when the PC resumes from sleep (the wall clock jumps)', async () => {
    const { logger } = captureLogger('resume');
    const mqtt: MqttConnection = new MqttConnection(
      { url: broker.url, clientId: 'discovery-resume-test', clean: true, reconnect: false, onMessage: (t, p): void => discovery.handleMessage(t, p) },
      logger,
    );
    const ctx = { host: 'ha-sleeper', prefix: 'homeassistant', intervalMs: 1000, device: deviceBlock('ha-sleeper', undefined), origin: originBlock() };
    const discovery: Discovery = new Discovery({ ctx, mqtt, logger, options: { settleMs: 300, birthDelayMaxMs: 0, vanishRounds: 3 } });
    const sampler = new Sampler([{ name: 'fake', templates: ['cpu_usage'], collect: () => Promise.resolve([{ metric: 'cpu_usage', value: 5 }]) }], logger, {
      timeoutMs: 1000,
    });
    let offset = 0;
    const agentLoop = new Agent({
      options: { host: 'ha-sleeper', intervalMs: 1000 },
      sampler,
      mqtt,
      logger,
      now: () => Date.now() + offset,
      hooks: {
        beforeSend: (metrics) => discovery.observe(metrics),
        onResume: () => discovery.announce('resumed from sleep'),
      },
    });
    await mqtt.waitConnected(5000);
    discovery.start();
    agentLoop.start();
    const once = ['agent_dropped', 'agent_queue', 'cpu_usage', 'online'];
    await waitFor('every config', () => (configsOf('ha-sleeper').length >= once.length ? true : undefined));
    await rounds('ha-sleeper', 2);
    // The online sensor, cpu_usage and the agent's own backlog and drops, once.
    expect(
      configsOf('ha-sleeper')
        .map((m) => m.topic.split('/')[3])
        .sort(),
    ).toEqual(once);
    offset = 10 * 60_000; // ten minutes asleep
    await waitFor('configs announced again', () => (configsOf('ha-sleeper').length >= 2 * once.length ? true : undefined), 5000);
    expect(
      configsOf('ha-sleeper')
        .map((m) => m.topic.split('/')[3])
        .sort(),
    ).toEqual(once.flatMap((m) => [m, m]));
    discovery.stop();
    await agentLoop.stop(1000);
  });
});
