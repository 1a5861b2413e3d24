/** A real Mosquitto on a free loopback port, in a temp dir. */
import { chmod, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { acceptsTcp, freePort, startServer, tempDir, type Server } from './process.js';

export interface Mosquitto extends Server {
  readonly port: number;
  readonly url: string;
  /** Stops the broker (SIGTERM: it saves its persistence file), keeping its directory for `start`. */
  halt(): Promise<void>;
  /** Starts it again on the same port, with the same config and data. */
  start(): Promise<Mosquitto>;
}

export interface MosquittoOptions {
  /** Lines appended to a config with one loopback listener. */
  readonly config?: readonly string[];
  readonly port?: number;
  /**
   * Keep sessions and queued messages across `halt` / `start`, saved on every change: stricter than the
   * shipped config (every 10 s), so that a crash test's ledger can be exact.
   */
  readonly persistent?: boolean;
}

export async function startMosquitto(options: MosquittoOptions = {}): Promise<Mosquitto> {
  const dir = await tempDir('mosquitto');
  // Started as root, Mosquitto drops to its own user before it writes its persistence file.
  await chmod(dir, 0o777);
  const port = options.port ?? (await freePort());
  const conf = join(dir, 'mosquitto.conf');
  const persistence = options.persistent
    ? ['persistence true', `persistence_location ${dir}/`, 'autosave_interval 1', 'autosave_on_changes true']
    : ['persistence false'];
  await writeFile(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      ...persistence,
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      ...(options.config ?? ['allow_anonymous true']),
      '',
    ].join('\n'),
  );
  const launch = async (): Promise<Mosquitto> => {
    const server = await startServer('mosquitto', 'mosquitto', ['-c', conf], dir, () => acceptsTcp(port));
    return {
      ...server,
      port,
      url: `mqtt://127.0.0.1:${port}`,
      halt: () => server.halt(),
      start: launch,
      stop: async () => {
        await server.halt();
        await rm(dir, { recursive: true, force: true });
      },
    };
  };
  return launch();
}
