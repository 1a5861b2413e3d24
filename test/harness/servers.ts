/** A Mosquitto and an InfluxDB for one test file: started before its tests, stopped after them, with every CLI process they left running. */
import { afterAll, beforeAll } from 'vitest';
import { stopAllCli } from './cli.js';
import { startInfluxDB, type InfluxDB } from './influxdb.js';
import { startMosquitto, type Mosquitto } from './mosquitto.js';

export interface Servers {
  broker: Mosquitto;
  /** Replace it after a restart (restartInfluxDB), so the new process is the one stopped. */
  influx: InfluxDB;
}

/** As the shipped config: anonymous aside, no cap on the messages the broker queues for the bridge. */
export const UNCAPPED = ['allow_anonymous true', 'max_queued_messages 0'] as const;

export interface ServerOptions {
  readonly brokerConfig?: readonly string[];
  /** Keep the broker's sessions and queues across `halt` / `start`. */
  readonly persistent?: boolean;
  readonly cleanup?: () => Promise<unknown>;
}

export function useServers(databases: readonly string[], options: ServerOptions = {}): Servers {
  const servers = {} as Servers;
  beforeAll(async () => {
    [servers.broker, servers.influx] = await Promise.all([
      startMosquitto({ config: options.brokerConfig ?? UNCAPPED, persistent: options.persistent ?? false }),
      startInfluxDB(databases),
    ]);
  });
  afterAll(async () => {
    await stopAllCli();
    await options.cleanup?.();
    await Promise.all([servers.broker?.stop(), servers.influx?.stop()]);
  });
  return servers;
}

/** A Mosquitto (anonymous, default config) alone for one test file, stopped after it with every CLI process left running. */
export function useBroker(): { broker: Mosquitto } {
  const servers = {} as { broker: Mosquitto };
  beforeAll(async () => {
    servers.broker = await startMosquitto();
  });
  afterAll(async () => {
    await stopAllCli();
    await servers.broker?.stop();
  });
  return servers;
}
