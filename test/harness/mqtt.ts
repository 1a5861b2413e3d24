/** MQTT clients a test uses: a capturing subscriber, a publisher, and mosquitto_pub as a third-party client. */
import { execFile } from 'node:child_process';
import { MqttConnection, RECONNECT_BACKOFF } from '../../common/mqtt.js';
import { captureLogger } from './logs.js';

export interface Captured {
  readonly topic: string;
  readonly payload: string;
  readonly at: number;
}

export interface Capture {
  readonly messages: Captured[];
  readonly connection: MqttConnection;
  forHost(host: string): Captured[];
  close(): Promise<void>;
}

/**
 * How long a client that lost its broker may take to be connected again once the broker is back:
 * its next attempt comes up to RECONNECT_BACKOFF.maxMs (30 s) after its last one, whatever the
 * machine's speed, and the connect itself then takes a moment on a loaded machine.
 */
export const RECONNECTED_WITHIN_MS = RECONNECT_BACKOFF.maxMs + 20_000;

let clients = 0;

export function connect(url: string, onMessage?: (topic: string, payload: Buffer) => void): MqttConnection {
  return new MqttConnection(
    { url, clientId: `test-${process.pid}-${clients++}`, clean: true, reconnect: false, ...(onMessage ? { onMessage } : {}) },
    captureLogger('test-mqtt').logger,
  );
}

/** Subscribes to `topic` and records every message with its time of arrival. */
export async function capture(url: string, topic = 'sensors/#'): Promise<Capture> {
  const messages: Captured[] = [];
  const connection = connect(url, (t, p) => void messages.push({ topic: t, payload: p.toString(), at: Date.now() }));
  await connection.waitConnected(5000);
  await connection.subscribe(topic, 1);
  return {
    messages,
    connection,
    forHost: (host) => messages.filter((m) => m.topic.startsWith(`sensors/${host}/`)),
    close: () => connection.close(true),
  };
}

/** Publishes with Debian's mosquitto_pub (QoS 1), as a third-party publisher would. */
export function mosquittoPub(port: number, topic: string, message: string, extra: readonly string[] = []): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-t', topic, '-m', message, ...extra], (error, _out, stderr) =>
      error ? reject(new Error(`mosquitto_pub failed: ${stderr}`)) : resolve(),
    );
  });
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
