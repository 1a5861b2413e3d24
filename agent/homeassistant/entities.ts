/**
 * The Home Assistant MQTT discovery payloads of one PC, built from the metric catalog: one
 * retained config per published metric on `<prefix>/<component>/<host>/<metric>/config`, plus a
 * connectivity binary sensor reading the host's availability topic. Pure functions; the agent's
 * `Discovery` decides when to publish them.
 */
import { packageVersion } from '../../common/version.js';
import { OFFLINE, ONLINE, availabilityTopic, resolveMetric, sampleTopic, type MetricTemplate } from '../../protocol/index.js';
import type { StaticInfo } from '../probe/index.js';

export type Json = string | number | boolean | null | readonly Json[] | { readonly [key: string]: Json };
export type JsonObject = { readonly [key: string]: Json };

/** A retained discovery message: its topic and its JSON payload. */
export interface Entity {
  readonly topic: string;
  readonly objectId: string;
  readonly config: JsonObject;
}

export interface DiscoveryContext {
  readonly host: string;
  readonly prefix: string;
  readonly intervalMs: number;
  /** The `device` block shared by every entity of this PC. */
  readonly device: JsonObject;
  readonly origin: JsonObject;
}

/** The object id of the connectivity sensor; no metric has this name (metrics never equal `online`). */
export const ONLINE_OBJECT_ID = 'online';

export function configTopic(prefix: string, component: string, host: string, objectId: string): string {
  return `${prefix}/${component}/${host}/${objectId}/config`;
}

/** Where Home Assistant publishes its birth (`online`) and last will (`offline`). */
export function statusTopic(prefix: string): string {
  return `${prefix}/status`;
}

/** Every discovery config of one host (node id = host). */
export function configSubscription(prefix: string, host: string): string {
  return `${prefix}/+/${host}/+/config`;
}

/** The object id of a config topic of this host, or undefined for any other topic. */
export function objectIdOf(prefix: string, host: string, topic: string): string | undefined {
  const parts = topic.split('/');
  if (parts.length !== 5 || parts[0] !== prefix || parts[2] !== host || parts[4] !== 'config') return undefined;
  return parts[3];
}

/** Seconds after which Home Assistant shows a value as unavailable: three missed samples, at least 30 s. */
export function expireAfterSeconds(intervalMs: number): number {
  return Math.max(Math.ceil((3 * intervalMs) / 1000), 30);
}

/** Decimals Home Assistant shows, by unit. */
const PRECISION: Readonly<Record<string, number>> = { '°C': 1, '%': 1, W: 1, B: 0, 'B/s': 0, s: 0, '': 2 };

/** Secondary values, shown under "Diagnostic" in Home Assistant. */
const DIAGNOSTIC: ReadonlySet<MetricTemplate> = new Set<MetricTemplate>([
  'uptime',
  'load1',
  'load5',
  'load15',
  'mem_used',
  'mem_available',
  'swap_used',
  'disk_{name}_used',
  'disk_{name}_free',
  'gpu{n}_mem_used',
  'agent_queue',
  'agent_dropped',
]);

export const SENSOR_VALUE_TEMPLATE = '{{ value_json.value }}';
/** A 1/0 metric as a binary sensor's ON/OFF (its default payload_on / payload_off). */
export const BINARY_VALUE_TEMPLATE = "{{ 'ON' if value_json.value == 1 else 'OFF' }}";

function availability(host: string): JsonObject {
  return { availability_topic: availabilityTopic(host), payload_available: ONLINE, payload_not_available: OFFLINE };
}

/** The discovery config of one metric, or undefined for a metric the catalog does not know. */
export function metricEntity(ctx: DiscoveryContext, metric: string): Entity | undefined {
  const resolved = resolveMetric(metric);
  if (!resolved) return undefined;
  const { spec, template } = resolved;
  const name = spec.label
    .replace('{instance}', resolved.instance ?? '')
    .replace(/\s+/g, ' ')
    .trim();
  const common = {
    name,
    unique_id: `hostpulse_${ctx.host}_${metric}`,
    state_topic: sampleTopic(ctx.host, metric),
    ...availability(ctx.host),
    expire_after: expireAfterSeconds(ctx.intervalMs),
    ...(spec.ha.deviceClass ? { device_class: spec.ha.deviceClass } : {}),
    ...(DIAGNOSTIC.has(template) ? { entity_category: 'diagnostic' } : {}),
  };
  const config: JsonObject =
    spec.ha.component === 'binary_sensor'
      ? { ...common, value_template: BINARY_VALUE_TEMPLATE, device: ctx.device, origin: ctx.origin }
      : {
          ...common,
          value_template: SENSOR_VALUE_TEMPLATE,
          ...(spec.unit ? { unit_of_measurement: spec.unit } : {}),
          state_class: spec.ha.stateClass ?? 'measurement',
          suggested_display_precision: PRECISION[spec.unit] ?? 2,
          device: ctx.device,
          origin: ctx.origin,
        };
  return { topic: configTopic(ctx.prefix, spec.ha.component, ctx.host, metric), objectId: metric, config };
}

/** The connectivity binary sensor: on while the host's retained availability says `online`. */
export function onlineEntity(ctx: DiscoveryContext): Entity {
  return {
    topic: configTopic(ctx.prefix, 'binary_sensor', ctx.host, ONLINE_OBJECT_ID),
    objectId: ONLINE_OBJECT_ID,
    config: {
      name: 'Online',
      unique_id: `hostpulse_${ctx.host}_${ONLINE_OBJECT_ID}`,
      state_topic: availabilityTopic(ctx.host),
      payload_on: ONLINE,
      payload_off: OFFLINE,
      device_class: 'connectivity',
      entity_category: 'diagnostic',
      device: ctx.device,
      origin: ctx.origin,
    },
  };
}

/** Values systeminformation reports when the firmware leaves a field unset. */
const PLACEHOLDER =
  /^(to be filled by o\.?e\.?m\.?|default string|system manufacturer|system product name|system version|not applicable|not specified|n\/a|none|unknown|o\.?e\.?m\.?|x\.x|0+|-)$/i;

function text(record: Readonly<Record<string, unknown>> | undefined, key: string): string | undefined {
  const value = record?.[key];
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  return trimmed === '' || PLACEHOLDER.test(trimmed) ? undefined : trimmed;
}

/** The `device` block of this PC: maker and model from the firmware, the OS as its software. */
export function deviceBlock(host: string, info: StaticInfo | undefined): JsonObject {
  const manufacturer = text(info?.system, 'manufacturer');
  const model = text(info?.system, 'model');
  const hwVersion = text(info?.system, 'version');
  const os = [text(info?.osInfo, 'distro') ?? text(info?.osInfo, 'platform'), text(info?.osInfo, 'release')].filter((p) => p !== undefined).join(' ');
  return {
    identifiers: [`hostpulse_${host}`],
    name: host,
    ...(manufacturer ? { manufacturer } : {}),
    ...(model ? { model } : {}),
    ...(hwVersion ? { hw_version: hwVersion } : {}),
    ...(os ? { sw_version: os } : {}),
  };
}

/** The `origin` block: which software published the configs. */
export function originBlock(version: string = packageVersion()): JsonObject {
  return { name: 'hostpulse', sw_version: version };
}

/** Deep equality of two JSON values, ignoring key order. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  return ka.every((k) => Object.hasOwn(rb, k) && sameJson(ra[k], rb[k]));
}
