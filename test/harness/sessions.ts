/**
 * Broker sessions the tests' bridges leave behind. A bridge subscribes with a persistent session
 * (clean = false): once it is gone, the broker queues every later sample on `sensors/+/+` for it
 * (in memory, and rewritten to disk on every change by a persistent test broker), so a test that
 * runs after it on the same broker pays for its queue — the outbox test drained at ~250 samples/s
 * instead of thousands. Each session of a bridge that has exited is forgotten after every test.
 */
import type { ChildProcess } from 'node:child_process';
import { MqttConnection } from '../../common/mqtt.js';
import { captureLogger } from './logs.js';

export interface Session {
  readonly url: string;
  readonly clientId: string;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
}

/** Connects once under the session's id with a clean session: the broker discards what it kept for it. Fails when the broker cannot be reached within `timeoutMs`. */
export async function discardSession(session: Session, timeoutMs: number): Promise<void> {
  const { url, clientId, username, password } = session;
  const mqtt = new MqttConnection(
    { url, clientId, username, password, clean: true, reconnect: false, connectTimeoutMs: timeoutMs },
    captureLogger('discard-session').logger,
  );
  try {
    await mqtt.waitConnected(timeoutMs);
  } finally {
    await mqtt.close(true);
  }
}

const sessions = new Map<string, Session & { readonly child: ChildProcess }>();

/** Notes the session a `hostpulse bridge` started with `env` holds (plain MQTT and WebSocket only). */
export function rememberBridgeSession(env: NodeJS.ProcessEnv, child: ChildProcess): void {
  const url = env['MQTT_URL'] ?? 'mqtt://localhost:1883';
  if (!/^(mqtt|ws):/.test(url)) return;
  const clientId = env['MQTT_CLIENT_ID'] ?? 'hostpulse-bridge';
  sessions.set(`${url} ${clientId}`, { url, clientId, username: env['MQTT_USERNAME'], password: env['MQTT_PASSWORD'], child });
}

const exited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null;

/**
 * Connects once with a clean session under the id of every bridge that has exited: the broker
 * discards what it kept for it. A broker that is gone (stopped by its test) has nothing to discard.
 */
export async function forgetBridgeSessions(): Promise<void> {
  await Promise.all(
    [...sessions].map(async ([key, s]) => {
      if (!exited(s.child)) return;
      sessions.delete(key);
      // A broker that stopped or refuses the login now holds nothing for a later test to meet.
      await discardSession(s, 2000).catch(() => undefined);
    }),
  );
}
