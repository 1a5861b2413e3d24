/**
 * The Node-RED peer's settings file and flow file, as a user would wire it in the editor: one tab,
 * `mqtt in` → `function` → `join` → `influxdb batch`, and the two config nodes (broker, InfluxDB).
 * Built here rather than kept as an exported blob so that the options it depends on stay visible.
 */

export interface FlowOptions {
  /** mqtt://host:port */
  readonly brokerUrl: string;
  /** http://host:port of InfluxDB 1.x */
  readonly influxUrl: string;
  readonly db: string;
  /** Fixed, with a persistent session (clean false), as a user keeping QoS 1 would set it. */
  readonly clientId: string;
  /** The broker node's birth message: sent right after it subscribed (the bench's readiness probe). */
  readonly probe: { readonly topic: string; readonly payload: string };
}

type FlowNode = Readonly<Record<string, unknown>> & { readonly id: string; readonly type: string };

/**
 * Node ids. Node-RED takes any property whose value is a config node's id for a reference to it,
 * so ids must not look like ordinary values ('join', 'http'…).
 */
const ID = {
  tab: 'hp-peer-tab',
  broker: 'hp-peer-broker',
  influx: 'hp-peer-influxdb',
  in: 'hp-peer-in',
  point: 'hp-peer-point',
  join: 'hp-peer-join',
  write: 'hp-peer-write',
} as const;

/**
 * sensors/<host>/<metric> with {"value","ts","unit","seq"} (parsed by `mqtt in`) → one point for
 * `influxdb batch`. The bench publishes cpu_usage only, hence the fixed measurement and field.
 */
const TO_POINT = `const host = msg.topic.split('/')[1];
msg.payload = { measurement: 'cpu', tags: { host }, fields: { usage: msg.payload.value }, timestamp: msg.payload.ts };
return msg;`;

export function nodeRedFlow(o: FlowOptions): FlowNode[] {
  return [{ id: ID.tab, type: 'tab', label: 'hostpulse peer', disabled: false }, brokerNode(o), influxNode(o), ...pipeline(o)];
}

function brokerNode(o: FlowOptions): FlowNode {
  const url = new URL(o.brokerUrl);
  return {
    id: ID.broker,
    type: 'mqtt-broker',
    name: 'bench broker',
    broker: url.hostname,
    port: url.port,
    clientid: o.clientId,
    autoConnect: true,
    usetls: false,
    protocolVersion: '4',
    keepalive: '60',
    cleansession: false,
    autoUnsubscribe: true,
    birthTopic: o.probe.topic,
    birthQos: '1',
    birthRetain: 'false',
    birthPayload: o.probe.payload,
    birthMsg: {},
    closeTopic: '',
    willTopic: '',
  };
}

function influxNode(o: FlowOptions): FlowNode {
  const url = new URL(o.influxUrl);
  return {
    id: ID.influx,
    type: 'influxdb',
    name: 'bench influxdb',
    influxdbVersion: '1.x',
    hostname: url.hostname,
    port: url.port,
    protocol: 'http',
    database: o.db,
    usetls: false,
  };
}

/** The flow nodes, left to right. Node-RED counts only nodes with x and y as flow nodes (the rest are config nodes). */
function pipeline(o: FlowOptions): FlowNode[] {
  const nodes: FlowNode[] = [
    {
      id: ID.in,
      type: 'mqtt in',
      name: 'sensors',
      topic: 'sensors/+/+',
      qos: '1',
      datatype: 'json',
      broker: ID.broker,
      nl: false,
      rap: true,
      rh: 0,
      inputs: 0,
      wires: [[ID.point]],
    },
    {
      id: ID.point,
      type: 'function',
      name: 'to point',
      func: TO_POINT,
      outputs: 1,
      timeout: 0,
      noerr: 0,
      initialize: '',
      finalize: '',
      libs: [],
      wires: [[ID.join]],
    },
    // One write per 1000 points, or 0.2 s after a batch's first point when fewer arrive.
    {
      id: ID.join,
      type: 'join',
      name: 'batch',
      mode: 'custom',
      build: 'array',
      property: 'payload',
      propertyType: 'msg',
      key: 'topic',
      joiner: '\\n',
      joinerType: 'str',
      useparts: false,
      accumulate: false,
      timeout: '0.2',
      count: '1000',
      reduceRight: false,
      wires: [[ID.write]],
    },
    { id: ID.write, type: 'influxdb batch', name: 'write', influxdb: ID.influx, precision: 'ms', retentionPolicy: '', database: o.db, wires: [] },
  ];
  return nodes.map((n, i) => ({ ...n, z: ID.tab, x: 140 + 200 * i, y: 80 }));
}

/**
 * The settings file: headless (no editor, admin API or HTTP nodes, so no port), warnings and errors
 * only, nothing fetched. It also ends Node-RED once `parentPid` is gone, as bench scripts do
 * (bench/proc.ts): a bench stopped with Ctrl-C must not leave it running.
 */
export function nodeRedSettings(parentPid: number): string {
  const settings = {
    httpAdminRoot: false,
    httpNodeRoot: false,
    credentialSecret: false,
    logging: { console: { level: 'warn', metrics: false, audit: false } },
    telemetry: { enabled: false },
    diagnostics: { enabled: false },
    externalModules: { autoInstall: false, palette: { allowInstall: false }, modules: { allowInstall: false } },
    functionExternalModules: false,
  };
  return `setInterval(() => process.ppid !== ${parentPid} && process.exit(1), 1000).unref();
module.exports = ${JSON.stringify(settings, null, 2)};
`;
}
