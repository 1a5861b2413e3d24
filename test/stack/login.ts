/** A broker login tried once, as any MQTT client would: the broker's answer in words. */
import { MqttConnection } from '../../common/mqtt.js';
import { captureLogger } from '../harness/logs.js';

export interface Login {
  readonly username?: string;
  readonly password?: string;
}

let tries = 0;

/** "accepted", or why the broker refused, e.g. "broker refused the connection: not authorized". */
export async function tryLogin(url: string, login: Login = {}): Promise<string> {
  const connection = new MqttConnection(
    { url, clientId: `stack-test-${process.pid}-${tries++}`, clean: true, reconnect: false, connectTimeoutMs: 5000, ...login },
    captureLogger('stack-login').logger,
  );
  try {
    await connection.waitConnected(10_000);
    return 'accepted';
  } catch {
    return connection.reason();
  } finally {
    await connection.close(true);
  }
}
