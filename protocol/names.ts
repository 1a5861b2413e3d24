/**
 * Topic layout and the rules for host and metric names.
 *
 *   sensors/<host>/<metric>        one sample of one metric
 *   sensors/<host>/availability    retained `online` / `offline`
 *
 * Host and metric names are allowlisted so that they are safe as MQTT topic levels (no `+`, `#`,
 * `/`, NUL), as Mosquitto ACL `%u` substitutions and as InfluxDB tag values.
 */
import { catalog, type MetricSpec, type MetricTemplate } from './catalog.js';

export const TOPIC_ROOT = 'sensors';
export const AVAILABILITY = 'availability';
export const ONLINE = 'online';
export const OFFLINE = 'offline';

export const HOST_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const METRIC_PATTERN = /^[a-z0-9_]+$/;
export const METRIC_MAX_LENGTH = 64;
/** Longest instance slug (filesystem, interface) folded into a metric name. */
export const SLUG_MAX_LENGTH = 40;

export function isValidHost(host: string): boolean {
  return HOST_PATTERN.test(host);
}

/** Why a host name breaks the rule, or undefined if it is valid. */
export function hostProblem(host: string): string | undefined {
  if (isValidHost(host)) return undefined;
  if (host.length === 0) return 'is empty';
  if (host.length > 63) return `is ${host.length} characters long (at most 63)`;
  return 'must be lower-case letters, digits and "-", starting with a letter or digit';
}

/**
 * The default host name: the OS host name, lower-cased, every character outside [a-z0-9-]
 * replaced by `-`, leading dashes removed, cut to 63 characters. Undefined if nothing is left.
 */
export function hostFromOsName(osHostname: string): string | undefined {
  const host = osHostname
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/^-+/, '')
    .slice(0, 63);
  return isValidHost(host) ? host : undefined;
}

/**
 * Folds an instance name (a mount point, an interface name) into a metric-name part:
 * lower-cased, every run of other characters becomes `_`, trimmed, at most SLUG_MAX_LENGTH.
 * `/` → `root`, `/home` → `home`, `C:` → `c`, `Ethernet 2` → `ethernet_2`.
 */
export function instanceSlug(raw: string): string {
  const slug = raw
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, SLUG_MAX_LENGTH)
    .replace(/_+$/, '');
  return slug === '' ? 'root' : slug;
}

/** A metric name resolved against the catalog. */
export interface ResolvedMetric {
  readonly name: string;
  readonly template: MetricTemplate;
  readonly spec: MetricSpec;
  /** The instance (`0`, `home`, `eth0`) for templated names. */
  readonly instance?: string;
}

const INSTANCE_PATTERNS = {
  '{n}': '(0|[1-9][0-9]?)',
  '{name}': '([a-z0-9]+(?:_[a-z0-9]+)*)',
} as const;

interface TemplateMatcher {
  readonly template: MetricTemplate;
  readonly regex: RegExp;
}

const matchers: readonly TemplateMatcher[] = (Object.keys(catalog) as MetricTemplate[])
  .filter((t) => t.includes('{'))
  .map((template) => {
    const source = template.replace(/\{n\}|\{name\}/, (m) => INSTANCE_PATTERNS[m as keyof typeof INSTANCE_PATTERNS]);
    return { template, regex: new RegExp(`^${source}$`) };
  });

/** Builds the metric name of one instance of a templated metric. */
export function metricName(template: MetricTemplate, instance?: string | number): string {
  if (!template.includes('{')) return template;
  if (instance === undefined) throw new Error(`metric ${template} needs an instance`);
  return template.replace(/\{n\}|\{name\}/, String(instance));
}

/** Resolves a metric name (a topic level) against the catalog; undefined if unknown. */
export function resolveMetric(name: string): ResolvedMetric | undefined {
  if (name.length > METRIC_MAX_LENGTH || !METRIC_PATTERN.test(name)) return undefined;
  if (Object.hasOwn(catalog, name)) {
    const template = name as MetricTemplate;
    if (!template.includes('{')) return { name, template, spec: catalog[template] };
  }
  for (const { template, regex } of matchers) {
    const m = regex.exec(name);
    if (m?.[1] !== undefined) {
      if (m[1].length > SLUG_MAX_LENGTH) return undefined;
      return { name, template, spec: catalog[template], instance: m[1] };
    }
  }
  return undefined;
}

export function sampleTopic(host: string, metric: string): string {
  return `${TOPIC_ROOT}/${host}/${metric}`;
}

export function availabilityTopic(host: string): string {
  return `${TOPIC_ROOT}/${host}/${AVAILABILITY}`;
}

/** What the bridge subscribes to: every metric and availability topic of every host. */
export const SUBSCRIPTION = `${TOPIC_ROOT}/+/+`;

/** The same as an MQTT shared subscription: the broker splits the stream among the bridges of `group`. */
export function sharedSubscription(group: string): string {
  return `$share/${group}/${SUBSCRIPTION}`;
}
