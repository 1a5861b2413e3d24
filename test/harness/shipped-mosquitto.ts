/** Mosquitto run with the repository's own mosquitto/ config and ACL, paths and ports moved to a temp dir. */
import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT } from './cli.js';
import { acceptsTcp, freePort, startServer, tempDir, type Server } from './process.js';

export interface ShippedMosquitto {
  readonly dir: string;
  readonly port: number;
  readonly wsPort: number;
  readonly passwd: string;
  server: Server;
  /** Starts it (again, after a crash) with the same config and data. */
  launch(): Promise<Server>;
  stop(): Promise<void>;
}


/** `writeLogins` fills the password file (e.g. with `hostpulse enrol`) before the broker starts on `port`. */
export async function startShippedMosquitto(writeLogins: (passwd: string, port: number) => Promise<void>): Promise<ShippedMosquitto> {
  const dir = await tempDir('shipped-mosquitto');
  // Started as root, Mosquitto drops to its own user before it reads logins and writes its data.
  await chmod(dir, 0o777);
  await mkdir(join(dir, 'data'));
  await chmod(join(dir, 'data'), 0o777);
  const [port, wsPort] = [await freePort(), await freePort()];
  const shipped = await readFile(join(ROOT, 'mosquitto/mosquitto.conf'), 'utf8');
  const conf = join(dir, 'mosquitto.conf');
  await writeFile(
    conf,
    shipped
      .replaceAll('/mosquitto/config/', `${dir}/`)
      .replaceAll('/mosquitto/data/', `${dir}/data/`)
      .replace(/^listener 1883$/m, `listener ${port} 127.0.0.1`)
      .replace(/^listener 9001$/m, `listener ${wsPort} 127.0.0.1`),
  );
  await copyFile(join(ROOT, 'mosquitto/acl'), join(dir, 'acl'));
  await chmod(join(dir, 'acl'), 0o644);
  const passwd = join(dir, 'passwd');
  await writeLogins(passwd, port);
  const launch = (): Promise<Server> => startServer('mosquitto', 'mosquitto', ['-c', conf], dir, () => acceptsTcp(port));
  const broker: ShippedMosquitto = {
    dir,
    port,
    wsPort,
    passwd,
    server: await launch(),
    launch: async () => (broker.server = await launch()),
    stop: () => broker.server.stop(),
  };
  return broker;
}
