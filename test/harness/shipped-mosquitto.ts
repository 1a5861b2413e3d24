/** Mosquitto run with the repository's own mosquitto/ config and the ACL `hostpulse enrol` writes, paths and ports moved to a temp dir. */
import { chmod, copyFile, cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ROOT } from './cli.js';
import { acceptsTcp, freePort, startServer, tempDir, type Server } from './process.js';

export interface ShippedMosquitto {
  readonly dir: string;
  readonly port: number;
  readonly wsPort: number;
  /** The port of `listener 8883` in a conf.d file, moved like the others. */
  readonly tlsPort: number;
  readonly passwd: string;
  server: Server;
  /** Starts it (again, after a crash) with the same config and data. */
  launch(): Promise<Server>;
  stop(): Promise<void>;
}

export interface ShippedOptions {
  /** Files for conf.d/ (name → text), with paths and ports moved as in mosquitto.conf. */
  readonly confD?: Readonly<Record<string, string>>;
  /** Files to copy into the config dir (path there → source), readable by Mosquitto's user. */
  readonly files?: Readonly<Record<string, string>>;
}

/** `writeLogins` fills the password file (e.g. with `hostpulse enrol`) before the broker starts on `port`. */
export async function startShippedMosquitto(
  writeLogins: (passwd: string, port: number) => Promise<void>,
  options: ShippedOptions = {},
): Promise<ShippedMosquitto> {
  const dir = await tempDir('shipped-mosquitto');
  // Started as root, Mosquitto drops to its own user before it reads logins and writes its data.
  await chmod(dir, 0o777);
  await mkdir(join(dir, 'data'));
  await chmod(join(dir, 'data'), 0o777);
  const [port, wsPort, tlsPort] = [await freePort(), await freePort(), await freePort()];
  const localise = (text: string): string =>
    text
      .replaceAll('/mosquitto/config/', `${dir}/`)
      .replaceAll('/mosquitto/data/', `${dir}/data/`)
      .replace(/^listener 1883$/m, `listener ${port} 127.0.0.1`)
      .replace(/^listener 9001$/m, `listener ${wsPort} 127.0.0.1`)
      .replace(/^listener 8883$/m, `listener ${tlsPort} 127.0.0.1`);
  const shipped = await readFile(join(ROOT, 'mosquitto/mosquitto.conf'), 'utf8');
  const conf = join(dir, 'mosquitto.conf');
  await writeFile(conf, localise(shipped));
  // As shipped, conf.d/ holds no *.conf (a developer's own are left behind); Mosquitto 2.0 needs the folder.
  await cp(join(ROOT, 'mosquitto/conf.d'), join(dir, 'conf.d'), { recursive: true, filter: (from) => !from.endsWith('.conf') });
  for (const [name, text] of Object.entries(options.confD ?? {})) await writeFile(join(dir, 'conf.d', name), localise(text));
  for (const [to, from] of Object.entries(options.files ?? {})) {
    await mkdir(dirname(join(dir, to)), { recursive: true });
    await copyFile(from, join(dir, to));
    await chmod(join(dir, to), 0o644);
  }
  // `hostpulse enrol` writes the acl beside the password file, as in the compose stack.
  const passwd = join(dir, 'passwd');
  await writeLogins(passwd, port);
  const launch = (): Promise<Server> => startServer('mosquitto', 'mosquitto', ['-c', conf], dir, () => acceptsTcp(port));
  const broker: ShippedMosquitto = {
    dir,
    port,
    wsPort,
    tlsPort,
    passwd,
    server: await launch(),
    launch: async () => (broker.server = await launch()),
    stop: () => broker.server.stop(),
  };
  return broker;
}
