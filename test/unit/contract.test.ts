import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MIN_TIMESTAMP_MS,
  catalog,
  decodeMessage,
  encodePayload,
  hostFromOsName,
  instanceSlug,
  isValidHost,
  metricName,
  resolveMetric,
  sampleTopic,
  type MetricTemplate,
} from '../../protocol/index.js';

const NOW = 1_763_683_200_000;
const options = { now: NOW, maxPayloadBytes: 4096, maxFutureMs: 300_000 };
const decode = (topic: string, payload: string) => decodeMessage(topic, Buffer.from(payload), options);

describe('host names', () => {
  it.each([
    ['pc1', true],
    ['a', true],
    ['0', true],
    ['living-room-pc', true],
    ['x'.repeat(63), true],
    ['x'.repeat(64), false],
    ['', false],
    ['-pc', false],
    ['PC1', false],
    ['pc_1', false],
    ['pc.local', false],
    ['pc/1', false],
    ['pc+', false],
    ['pc#', false],
    ['pc\u0000', false],
    ['pc 1', false],
    ['pc$', false],
    ['pç', false],
  ])('%j valid: %s', (host, valid) => {
    expect(isValidHost(host)).toBe(valid);
  });

  it.each([
    ['My-PC', 'my-pc'],
    ['desktop.example.com', 'desktop-example-com'],
    ['Büro_PC', 'b-ro-pc'],
    ['_hidden', 'hidden'],
    ['x'.repeat(80), 'x'.repeat(63)],
    ['---', undefined],
    ['', undefined],
  ])('OS host name %j becomes %j', (os, host) => {
    expect(hostFromOsName(os)).toBe(host);
  });
});

describe('metric names', () => {
  it.each([
    ['cpu_temp', 'cpu_temp', undefined],
    ['cpu_usage', 'cpu_usage', undefined],
    ['mem_usage', 'mem_usage', undefined],
    ['gpu0_temp', 'gpu{n}_temp', '0'],
    ['gpu1_temp', 'gpu{n}_temp', '1'],
    ['gpu12_mem_usage', 'gpu{n}_mem_usage', '12'],
    ['gpu3_usage', 'gpu{n}_usage', '3'],
    ['disk_root_usage', 'disk_{name}_usage', 'root'],
    ['disk_boot_efi_free', 'disk_{name}_free', 'boot_efi'],
    ['disk_mnt_data_2_used', 'disk_{name}_used', 'mnt_data_2'],
    ['net_eth0_rx', 'net_{name}_rx', 'eth0'],
    ['net_wi_fi_tx', 'net_{name}_tx', 'wi_fi'],
  ])('%s resolves to %s (instance %s)', (name, template, instance) => {
    const resolved = resolveMetric(name);
    expect(resolved?.template).toBe(template);
    expect(resolved?.instance).toBe(instance);
  });

  it.each([
    '',
    'CPU_TEMP',
    'cpu-temp',
    'cpu_temp/x',
    'gpu_temp',
    'gpu01_temp',
    'gpu100_temp',
    'gpux_temp',
    'disk__usage',
    'disk_usage',
    'disk_a__b_usage',
    'net_eth0',
    'availability2',
    'toString',
    'constructor',
    '__proto__',
    `disk_${'a'.repeat(41)}_usage`,
    'x'.repeat(65),
  ])('%j is not a metric', (name) => {
    expect(resolveMetric(name)).toBeUndefined();
  });

  it.each([
    ['/', 'root'],
    ['/home', 'home'],
    ['/boot/efi', 'boot_efi'],
    ['C:', 'c'],
    ['/Volumes/Macintosh HD', 'volumes_macintosh_hd'],
    ['Ethernet 2', 'ethernet_2'],
    ['Wi-Fi', 'wi_fi'],
    ['enp3s0', 'enp3s0'],
    [`/mnt/${'x'.repeat(60)}`, `mnt_${'x'.repeat(36)}`],
  ])('instance %j folds to %j', (raw, slug) => {
    expect(instanceSlug(raw)).toBe(slug);
  });

  it('every templated metric round-trips for any instance name', () => {
    const templates = (Object.keys(catalog) as MetricTemplate[]).filter((t) => t.includes('{name}'));
    fc.assert(
      fc.property(fc.constantFrom(...templates), fc.string({ maxLength: 80 }), (template, raw) => {
        const slug = instanceSlug(raw);
        const resolved = resolveMetric(metricName(template, slug));
        expect(resolved?.template).toBe(template);
        expect(resolved?.instance).toBe(slug);
      }),
    );
  });

  it('every GPU metric round-trips for indexes 0–99', () => {
    const templates = (Object.keys(catalog) as MetricTemplate[]).filter((t) => t.includes('{n}'));
    for (const template of templates) {
      for (const n of [0, 1, 9, 10, 99]) expect(resolveMetric(metricName(template, n))).toMatchObject({ template, instance: String(n) });
    }
  });
});

describe('payloads', () => {
  const good = encodePayload({ value: 42.5, ts: NOW - 1000, unit: '°C', seq: 7 });

  it('decodes what the agent encodes', () => {
    const d = decode(sampleTopic('pc1', 'cpu_temp'), good);
    expect(d).toMatchObject({ ok: true, kind: 'sample', sample: { host: 'pc1', value: 42.5, ts: NOW - 1000, seq: 7 } });
  });

  it.each([
    ['a bare number', '41.5', 41.5],
    ['a negative bare number', '-3', -3],
    ['a bare number with spaces', ' 12 ', 12],
    ['an exponent', '1e1', 10],
  ])('accepts %s, stamped with the time of receipt', (_, payload, value) => {
    expect(decode('sensors/esp-1/cpu_temp', payload)).toMatchObject({ ok: true, sample: { value, ts: NOW } });
  });

  it('accepts JSON without ts, stamped with the time of receipt', () => {
    expect(decode('sensors/pc1/cpu_usage', '{"value": 3}')).toMatchObject({ ok: true, sample: { value: 3, ts: NOW } });
  });

  it('reads availability', () => {
    expect(decode('sensors/pc1/availability', 'online')).toEqual({ ok: true, kind: 'availability', host: 'pc1', online: true });
    expect(decode('sensors/pc1/availability', 'offline')).toEqual({ ok: true, kind: 'availability', host: 'pc1', online: false });
    // An empty (retained) message deletes the availability; blank text is still garbage.
    expect(decode('sensors/pc1/availability', '')).toEqual({ ok: true, kind: 'availability_cleared', host: 'pc1' });
    expect(decode('sensors/pc1/availability', ' ')).toMatchObject({ ok: false, reason: 'bad_payload' });
  });

  it.each([
    ['sensors/pc1', good, 'bad_topic'],
    ['sensors/pc1/cpu_temp/x', good, 'bad_topic'],
    ['metrics/pc1/cpu_temp', good, 'bad_topic'],
    ['sensors/PC1/cpu_temp', good, 'bad_host'],
    ['sensors/pc_1/cpu_temp', good, 'bad_host'],
    ['sensors//cpu_temp', good, 'bad_host'],
    ['sensors/pc1/fan_rpm', good, 'unknown_metric'],
    ['sensors/pc1/availability', 'maybe', 'bad_payload'],
    ['sensors/pc1/cpu_temp', '', 'bad_payload'],
    ['sensors/pc1/cpu_temp', 'ON', 'bad_payload'],
    ['sensors/pc1/cpu_temp', '0x10', 'bad_payload'],
    ['sensors/pc1/cpu_temp', '{"value": 4', 'bad_payload'],
    ['sensors/pc1/cpu_temp', '[42]', 'bad_payload'],
    ['sensors/pc1/cpu_temp', 'null', 'bad_payload'],
    ['sensors/pc1/cpu_temp', '{"value": "42"}', 'bad_value'],
    ['sensors/pc1/cpu_temp', '{"value": null}', 'bad_value'],
    ['sensors/pc1/cpu_temp', '{"temp": 42}', 'bad_value'],
    ['sensors/pc1/cpu_temp', '{"value": 1e400}', 'bad_value'],
    ['sensors/pc1/cpu_temp', '1e400', 'bad_value'],
    ['sensors/pc1/cpu_temp', '{"value": true}', 'bad_value'],
    ['sensors/pc1/cpu_temp', '151', 'out_of_range'],
    ['sensors/pc1/cpu_usage', '100.5', 'out_of_range'],
    ['sensors/pc1/cpu_usage', '-1', 'out_of_range'],
    ['sensors/pc1/battery_charging', '2', 'out_of_range'],
    ['sensors/pc1/cpu_temp', `{"value": 40, "ts": ${Math.floor(NOW / 1000)}}`, 'bad_timestamp'],
    ['sensors/pc1/cpu_temp', `{"value": 40, "ts": ${NOW + 0.5}}`, 'bad_timestamp'],
    ['sensors/pc1/cpu_temp', '{"value": 40, "ts": "now"}', 'bad_timestamp'],
    ['sensors/pc1/cpu_temp', '{"value": 40, "ts": 1e300}', 'bad_timestamp'],
    ['sensors/pc1/cpu_temp', `{"value": 40, "ts": ${NOW + 3_600_000}}`, 'future_timestamp'],
    ['sensors/pc1/cpu_temp', `{"value": 40, "pad": "${'x'.repeat(5000)}"}`, 'too_large'],
  ])('%s %j is rejected as %s', (topic, payload, reason) => {
    expect(decode(topic, payload)).toMatchObject({ ok: false, reason });
  });

  it('accepts a sample up to the future limit and from long ago', () => {
    expect(decode('sensors/pc1/cpu_temp', `{"value": 40, "ts": ${NOW + 300_000}}`).ok).toBe(true);
    expect(decode('sensors/pc1/cpu_temp', `{"value": 40, "ts": ${MIN_TIMESTAMP_MS}}`).ok).toBe(true);
  });

  it('never throws, whatever the topic and bytes', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 120 }), fc.uint8Array({ maxLength: 600 }), (topic, bytes) => {
        const d = decodeMessage(topic, bytes, options);
        expect(typeof d.ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });

  it('accepts only finite in-range values for any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const d = decode('sensors/pc1/cpu_usage', JSON.stringify({ value, ts: NOW }));
        const valid = typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= 100;
        expect(d.ok).toBe(valid);
      }),
      { numRuns: 2000 },
    );
  });
});
