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

interface Session {
  readonly url: string;
  readonly clientId: string;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly child: ChildProcess;
}

const sessions = new Map<string, Session>();

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
  const { logger } = captureLogger('forget-sessions');
  await Promise.all(
    [...sessions].map(async ([key, s]) => {
      if (!exited(s.child)) return;
      sessions.delete(key);
      const mqtt = new MqttConnection({ url: s.url, clientId: s.clientId, username: s.username, password: s.password, clean: true, reconnect: false, connectTimeoutMs: 2000 }, logger);
      try {
        await mqtt.waitConnected(2000);
      } catch {
        // The broker stopped or refuses the login now: nothing of it for a later test to meet.
      } finally {
        await mqtt.close(true);
      }
    }),
  );
}
