/** `hostpulse enrol`: broker logins for PCs and for the stack's own services. */
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { HA_PREFIX, haPrefixProblem, mosquittoAcl, serviceLoginProblem } from '../broker/acl.js';
import { parseConfig, required, url, z } from '../common/config.js';
import { hashLine, randomPassword, readPasswd, writeBrokerFile, writePasswd, type WriteOptions } from '../broker/passwd.js';
import { MQTT_PROTOCOLS } from '../common/mqtt.js';
import { hostProblem } from '../protocol/index.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, configOrReport, parseCommandLine } from './shared.js';

/** The stack's service logins and the variable holding each password. Names with "_" can never be hosts. */
export const SERVICE_LOGINS = {
  hostpulse_bridge: 'MQTT_BRIDGE_PASSWORD',
  hostpulse_reader: 'MQTT_READER_PASSWORD',
  hostpulse_health: 'MQTT_HEALTHCHECK_PASSWORD',
} as const;

export const ENROL_HELP = `Usage: hostpulse enrol <host> [options]     create (or replace) the broker login of a PC
       hostpulse enrol --service <login>       create (or replace) a further service login
       hostpulse enrol --remove <login>        remove a login
       hostpulse enrol --services              write the stack's service logins from the environment

A PC logs in with its host name and may publish only under sensors/<host>/#. The host name must
match [a-z0-9][a-z0-9-]{0,62}: "/", "+" and "#" are refused because Mosquitto puts the login
name into its access rules verbatim. The password file holds PBKDF2-SHA512 hashes that
Mosquitto 2.0 reads; the broker picks up changes on SIGHUP.

The broker names each session after its login, so that no login can take over another's
session: every program that connects at the same time needs a login of its own. Each further
bridge (MQTT_SHARE_GROUP) gets hostpulse_bridge_<name>, each further home-automation tool
hostpulse_reader_<name>, with the rights of hostpulse_bridge / hostpulse_reader.

Every change also rewrites the broker's access rules (Mosquitto's acl_file) for the logins in
the password file, for the Home Assistant discovery prefix in HA_DISCOVERY_PREFIX (default
${HA_PREFIX}; the agents' and Home Assistant's must be the same).

Options:
  --passwd FILE     the password file (default mosquitto/passwd)
  --acl FILE        the access rules written with it (default: acl beside the password file)
  --mqtt-url URL    the broker address the PC will use, printed in its settings
                    (default MQTT_PUBLIC_URL, else mqtt://<this machine>:1883)
  --password PW     this password instead of a random one
  --owner UID:GID   hand the file to this owner (in Docker: 1883:1883, Mosquitto's user)
  -h, --help        show this help

--services reads ${Object.values(SERVICE_LOGINS).join(', ')}
(from .env in the compose stack) and writes the logins ${Object.keys(SERVICE_LOGINS).join(', ')}.
`;

const servicesSchema = z.object(Object.fromEntries(Object.values(SERVICE_LOGINS).map((v) => [v, required().min(12, 'must be at least 12 characters')])));
const urlSchema = z.object({ MQTT_PUBLIC_URL: url(MQTT_PROTOCOLS, `mqtt://${hostname().toLowerCase()}:1883`) });

export async function runEnrol(args: readonly string[]): Promise<number> {
  const parsed = parseCommandLine('enrol', args, {
    passwd: { type: 'string' },
    'mqtt-url': { type: 'string' },
    password: { type: 'string' },
    owner: { type: 'string' },
    remove: { type: 'string' },
    services: { type: 'boolean' },
    service: { type: 'string' },
    acl: { type: 'string' },
  });
  const flags = parsed?.values;
  if (!flags) return EXIT_USAGE;
  if (flags['help']) {
    process.stdout.write(ENROL_HELP);
    return EXIT_OK;
  }
  const file = typeof flags['passwd'] === 'string' ? flags['passwd'] : 'mosquitto/passwd';
  const owner = typeof flags['owner'] === 'string' ? flags['owner'] : undefined;
  if (owner !== undefined && !/^\d+(:\d+)?$/.test(owner)) {
    process.stderr.write(`hostpulse enrol: --owner must be UID or UID:GID (got "${owner}")\n`);
    return EXIT_USAGE;
  }
  const hosts = parsed?.positionals ?? [];
  const acl = typeof flags['acl'] === 'string' ? flags['acl'] : join(dirname(file), 'acl');
  const ha = process.env['HA_DISCOVERY_PREFIX'] || HA_PREFIX;
  const haProblem = haPrefixProblem(ha);
  if (haProblem) {
    process.stderr.write(`hostpulse enrol: HA_DISCOVERY_PREFIX ${haProblem}\n`);
    return EXIT_USAGE;
  }
  // The password file first: a login the rules do not name yet has no rights, never more.
  const write = async (entries: ReadonlyMap<string, string>, options: WriteOptions): Promise<void> => {
    await writePasswd(file, entries, options);
    await writeBrokerFile(acl, mosquittoAcl(entries.keys(), ha), options);
  };
  try {
    const entries = await readPasswd(file);
    if (flags['services']) {
      const config = configOrReport('enrol', parseConfig(servicesSchema, process.env));
      if (!config) return EXIT_USAGE;
      for (const [user, variable] of Object.entries(SERVICE_LOGINS)) entries.set(user, hashLine(user, config[variable] as string));
      await write(entries, { owner });
      process.stderr.write(`wrote the service logins ${Object.keys(SERVICE_LOGINS).join(', ')} to ${file}\n`);
      return EXIT_OK;
    }
    if (typeof flags['remove'] === 'string') {
      if (!entries.delete(flags['remove'])) {
        process.stderr.write(`hostpulse enrol: no login "${flags['remove']}" in ${file}\n`);
        return EXIT_FAILURE;
      }
      await write(entries, { owner });
      process.stderr.write(`removed ${flags['remove']} from ${file}; reload the broker (SIGHUP) to apply\n`);
      return EXIT_OK;
    }
    if (typeof flags['service'] === 'string') {
      const login = flags['service'];
      const problem = serviceLoginProblem(login);
      if (problem || hosts.length > 0) {
        process.stderr.write(`hostpulse enrol: --service "${login}" ${problem ?? 'takes no host name'}\n`);
        return EXIT_USAGE;
      }
      const password = typeof flags['password'] === 'string' ? flags['password'] : randomPassword();
      const replaced = entries.has(login);
      entries.set(login, hashLine(login, password));
      await write(entries, { owner });
      process.stdout.write(`# broker login ${login}: keep it secret\nMQTT_USERNAME=${login}\nMQTT_PASSWORD=${password}\n`);
      process.stderr.write(`${replaced ? 'replaced' : 'added'} ${login} in ${file} and ${acl}; reload the broker (SIGHUP) to apply\n`);
      return EXIT_OK;
    }
    const [host, ...extra] = hosts;
    if (host === undefined || extra.length > 0) {
      process.stderr.write(`hostpulse enrol: give exactly one host name\n\n${ENROL_HELP}`);
      return EXIT_USAGE;
    }
    const problem = hostProblem(host);
    if (problem) {
      process.stderr.write(`hostpulse enrol: host name "${host}" ${problem}; "/", "+" and "#" would let it write outside sensors/<host>/\n`);
      return EXIT_USAGE;
    }
    const target = configOrReport(
      'enrol',
      parseConfig(urlSchema, typeof flags['mqtt-url'] === 'string' ? { MQTT_PUBLIC_URL: flags['mqtt-url'] } : process.env),
    );
    if (!target) return EXIT_USAGE;
    const password = typeof flags['password'] === 'string' ? flags['password'] : randomPassword();
    const replaced = entries.has(host);
    entries.set(host, hashLine(host, password));
    await write(entries, { owner });
    process.stdout.write(
      `# hostpulse agent settings for ${host}: keep them secret (agent environment or config file)\n` +
        `SENSORS_HOST=${host}\nMQTT_URL=${target.MQTT_PUBLIC_URL}\nMQTT_USERNAME=${host}\nMQTT_PASSWORD=${password}\n`,
    );
    process.stderr.write(`${replaced ? 'replaced' : 'added'} ${host} in ${file}; reload the broker (SIGHUP) to apply\n`);
    return EXIT_OK;
  } catch (error) {
    process.stderr.write(`hostpulse enrol: ${(error as Error).message}\n`);
    return EXIT_FAILURE;
  }
}
