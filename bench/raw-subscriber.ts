/**
 * The raw limit: a plain MQTT.js subscriber (no handler logic, MQTT.js's own acknowledgements), run
 * as its own process so that its CPU time is read from /proc exactly like the bridge's. It imports
 * mqtt directly on purpose: it is the reference the bridge's connection wrapper is measured against.
 *
 * - `subscribeOnly`: connects with a persistent session, subscribes, disconnects (the broker then
 *   queues for this client id).
 * - otherwise it counts messages and reports `connected` {at, sessionPresent}, `subscribed`,
 *   `progress` {count, firstAt, lastAt} every 250 ms, and `done` once `expect` arrived.
 */
import mqtt from 'mqtt';
import { childOptions, report } from './proc.js';

export interface RawSubscriberOptions {
  readonly url: string;
  readonly clientId: string;
  readonly qos: 0 | 1;
  /** false: a persistent session. */
  readonly clean: boolean;
  readonly subscribeOnly?: boolean;
  readonly expect?: number;
}

const TOPIC = 'sensors/+/+';
const o = childOptions<RawSubscriberOptions>();
let count = 0;
let firstAt = 0;
let lastAt = 0;
const client = mqtt.connect(o.url, { clientId: o.clientId, clean: o.clean, protocolVersion: 4, reconnectPeriod: 0, keepalive: 60 });
client.on('message', () => {
  lastAt = Date.now();
  if (count++ === 0) firstAt = lastAt;
  if (count === o.expect) report('done', { count, firstAt, lastAt });
});
client.on('error', (error) => {
  process.stderr.write(`raw subscriber: ${error.message}\n`);
  process.exit(1);
});
client.once('connect', (connack) => {
  report('connected', { at: Date.now(), sessionPresent: connack.sessionPresent });
  if (connack.sessionPresent) return;
  client.subscribe(TOPIC, { qos: o.qos }, (error) => {
    if (error) throw error;
    report('subscribed');
    if (o.subscribeOnly) client.end(false, {}, () => process.exit(0));
  });
});
setInterval(() => report('progress', { count, firstAt, lastAt }), 250);
process.once('SIGTERM', () => client.end(true, {}, () => process.exit(0)));
