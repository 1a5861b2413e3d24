/** A real Mosquitto on a free loopback port, in a temp dir. */
import { writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort, startServer, tempDir, type Server } from './process.js';

export interface Mosquitto extends Server {
  readonly port: number;
  readonly url: string;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/** `extraConfig` lines are appended to a config with one loopback listener. */
export async function startMosquitto(extraConfig: readonly string[] = ['allow_anonymous true'], fixedPort?: number): Promise<Mosquitto> {
  const dir = await tempDir('mosquitto');
  const port = fixedPort ?? (await freePort());
  const conf = join(dir, 'mosquitto.conf');
  await writeFile(conf, [`listener ${port} 127.0.0.1`, 'persistence false', 'log_dest stderr', 'log_type error', 'log_type warning', ...extraConfig, ''].join('\n'));
  const server = await startServer('mosquitto', 'mosquitto', ['-c', conf], dir, () => accepts(port));
  return { ...server, port, url: `mqtt://127.0.0.1:${port}` };
}
