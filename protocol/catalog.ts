/**
 * The metric catalog: every metric hostpulse knows, with its unit, valid range, meaning,
 * Home Assistant classes and InfluxDB storage.
 *
 * A key is a name template. Metrics of devices that come in several carry the instance in
 * their name:
 *   `{n}`    a device index, 0–99 (GPUs): `gpu{n}_temp` → `gpu0_temp`, `gpu1_temp`
 *   `{name}` an instance slug (filesystems, network interfaces): `disk_{name}_usage` →
 *            `disk_root_usage`, `disk_home_usage`; see `instanceSlug` in names.ts.
 * The instance is stored as the tag named by `instanceTag`.
 */

export type HaComponent = 'sensor' | 'binary_sensor';

export interface MetricSpec {
  /** Unit of the value; '' for a plain number (load average, on/off). */
  readonly unit: string;
  /** Inclusive valid range; a value outside it is rejected by the bridge. */
  readonly min: number;
  readonly max: number;
  readonly description: string;
  /**
   * Short human name, e.g. for Home Assistant entities; `{instance}` stands for the instance
   * (`GPU {instance} temperature` → `GPU 0 temperature`).
   */
  readonly label: string;
  readonly ha: {
    readonly component: HaComponent;
    readonly deviceClass?: string;
    readonly stateClass?: 'measurement' | 'total_increasing';
  };
  readonly influx: {
    readonly measurement: string;
    readonly field: string;
  };
  /** Tag key that receives the instance, for templated names. */
  readonly instanceTag?: string;
}

const GiB = 1024 ** 3;
/** Bytes: up to 1 PiB for a filesystem, far beyond any real one. */
const MAX_BYTES = 1024 * 1024 * GiB;
/** Bytes per second: 1 Tbit/s. */
const MAX_RATE = 125e9;

const percent = (label: string, description: string, measurement: string, field: string, instanceTag?: string): MetricSpec => ({
  unit: '%',
  min: 0,
  max: 100,
  description,
  label,
  ha: { component: 'sensor', stateClass: 'measurement' },
  influx: { measurement, field },
  ...(instanceTag ? { instanceTag } : {}),
});

const celsius = (label: string, description: string, measurement: string, field: string, instanceTag?: string): MetricSpec => ({
  unit: '°C',
  min: -50,
  max: 150,
  description,
  label,
  ha: { component: 'sensor', deviceClass: 'temperature', stateClass: 'measurement' },
  influx: { measurement, field },
  ...(instanceTag ? { instanceTag } : {}),
});

const bytes = (label: string, description: string, measurement: string, field: string, instanceTag?: string): MetricSpec => ({
  unit: 'B',
  min: 0,
  max: MAX_BYTES,
  description,
  label,
  ha: { component: 'sensor', deviceClass: 'data_size', stateClass: 'measurement' },
  influx: { measurement, field },
  ...(instanceTag ? { instanceTag } : {}),
});

const rate = (label: string, description: string, field: string): MetricSpec => ({
  unit: 'B/s',
  min: 0,
  max: MAX_RATE,
  description,
  label,
  ha: { component: 'sensor', deviceClass: 'data_rate', stateClass: 'measurement' },
  influx: { measurement: 'net', field },
  instanceTag: 'iface',
});

const load = (minutes: number): MetricSpec => ({
  unit: '',
  min: 0,
  max: 100_000,
  description: `Load average over ${minutes} minute${minutes > 1 ? 's' : ''} (not reported on Windows)`,
  label: `Load average ${minutes} min`,
  ha: { component: 'sensor', stateClass: 'measurement' },
  influx: { measurement: 'system', field: `load${minutes}` },
});

/** The agent's own counts of samples, stored in `hostpulse_agent` for the pipeline-health dashboard. */
const agentCount = (label: string, description: string, field: string, stateClass: 'measurement' | 'total_increasing'): MetricSpec => ({
  unit: '',
  min: 0,
  max: 1e12,
  description,
  label,
  ha: { component: 'sensor', stateClass },
  influx: { measurement: 'hostpulse_agent', field },
});

export const catalog = {
  cpu_usage: percent('CPU usage', 'CPU usage, all cores', 'cpu', 'usage'),
  cpu_temp: celsius('CPU temperature', 'CPU package temperature', 'cpu', 'temp'),
  cpu_temp_max: celsius('CPU hottest core temperature', 'Temperature of the hottest CPU core', 'cpu', 'temp_max'),
  load1: load(1),
  load5: load(5),
  load15: load(15),
  mem_usage: percent('Memory usage', 'Memory in use (total minus available)', 'mem', 'usage'),
  mem_used: bytes('Memory used', 'Memory in use (total minus available)', 'mem', 'used'),
  mem_available: bytes('Memory available', 'Memory available to programs without swapping', 'mem', 'available'),
  swap_usage: percent('Swap usage', 'Swap in use (only when the machine has swap)', 'mem', 'swap_usage'),
  swap_used: bytes('Swap used', 'Swap in use (only when the machine has swap)', 'mem', 'swap_used'),
  'disk_{name}_usage': percent('Disk {instance} usage', 'Filesystem space in use', 'disk', 'usage', 'disk'),
  'disk_{name}_used': bytes('Disk {instance} used', 'Filesystem space in use', 'disk', 'used', 'disk'),
  'disk_{name}_free': bytes('Disk {instance} free', 'Filesystem space available to programs', 'disk', 'free', 'disk'),
  'net_{name}_rx': rate('Network {instance} receive', 'Network receive rate', 'rx'),
  'net_{name}_tx': rate('Network {instance} transmit', 'Network transmit rate', 'tx'),
  'gpu{n}_temp': celsius('GPU {instance} temperature', 'GPU core temperature', 'gpu', 'temp', 'gpu'),
  'gpu{n}_usage': percent('GPU {instance} usage', 'GPU utilisation', 'gpu', 'usage', 'gpu'),
  'gpu{n}_mem_usage': percent('GPU {instance} memory usage', 'GPU memory in use', 'gpu', 'mem_usage', 'gpu'),
  'gpu{n}_mem_used': bytes('GPU {instance} memory used', 'GPU memory in use', 'gpu', 'mem_used', 'gpu'),
  'gpu{n}_power': {
    unit: 'W',
    min: 0,
    max: 5000,
    description: 'GPU power draw',
    label: 'GPU {instance} power',
    ha: { component: 'sensor', deviceClass: 'power', stateClass: 'measurement' },
    influx: { measurement: 'gpu', field: 'power' },
    instanceTag: 'gpu',
  },
  'gpu{n}_fan': percent('GPU {instance} fan', 'GPU fan speed, percent of maximum', 'gpu', 'fan', 'gpu'),
  battery_level: {
    unit: '%',
    min: 0,
    max: 100,
    description: 'Battery charge',
    label: 'Battery level',
    ha: { component: 'sensor', deviceClass: 'battery', stateClass: 'measurement' },
    influx: { measurement: 'battery', field: 'level' },
  },
  battery_charging: {
    unit: '',
    min: 0,
    max: 1,
    description: 'Battery charging: 1 yes, 0 no',
    label: 'Battery charging',
    ha: { component: 'binary_sensor', deviceClass: 'battery_charging' },
    influx: { measurement: 'battery', field: 'charging' },
  },
  uptime: {
    unit: 's',
    min: 0,
    max: 10 * 365 * 24 * 3600,
    description: 'Time since the machine booted',
    label: 'Uptime',
    ha: { component: 'sensor', deviceClass: 'duration', stateClass: 'measurement' },
    influx: { measurement: 'system', field: 'uptime' },
  },
  agent_queue: agentCount('Agent backlog', 'Samples the agent holds for the broker (on disk while the broker is unreachable)', 'queued', 'measurement'),
  agent_dropped: agentCount(
    'Agent dropped samples',
    "Samples the agent dropped since it started: its queue's size (MAX_QUEUE_BYTES) or age (MAX_QUEUE_AGE) bound",
    'dropped',
    'total_increasing',
  ),
} as const satisfies Record<string, MetricSpec>;

export type MetricTemplate = keyof typeof catalog;

/**
 * What the bridge stores besides samples: each host's availability (1 online, 0 offline, at the
 * time the bridge received it), and its own counters (cumulative since it started, one point per
 * STATS_INTERVAL, tagged with its MQTT client id), for the pipeline-health dashboard.
 */
export const availabilityStorage = { measurement: 'availability', field: 'online' } as const;
export const pipelineStorage = { measurement: 'hostpulse_bridge', tag: 'bridge' } as const;
