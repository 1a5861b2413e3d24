/**
 * The broker's access rules as code: the embedded broker applies them directly, and
 * `hostpulse enrol` writes them out as Mosquitto's acl_file (`mosquittoAcl`), so the two brokers
 * cannot drift apart (a test runs one table of cases against both).
 *
 *   an agent (any login that is a host name) writes sensors/<login>/# and its own Home Assistant
 *     discovery configs <prefix>/+/<login>/+/config, reads those configs and <prefix>/status;
 *   hostpulse_bridge (and hostpulse_bridge_<name>: one login per bridge) reads sensors/#;
 *   hostpulse_reader (and hostpulse_reader_<name>: one login per home-automation tool) reads
 *     sensors/# and homeassistant/#, writes homeassistant/status only;
 *   hostpulse_health reads $SYS/broker/uptime.
 *
 * Both brokers name each session after its login (Mosquitto: use_username_as_clientid), so a
 * login can never take over another's session; a program that needs a session of its own needs a
 * login of its own, hence the `_<name>` service logins.
 */
import { isValidHost } from '../protocol/index.js';

export const BRIDGE_LOGIN = 'hostpulse_bridge';
export const READER_LOGIN = 'hostpulse_reader';
export const HEALTH_LOGIN = 'hostpulse_health';

/** Home Assistant's default discovery prefix (HA_DISCOVERY_PREFIX). */
export const HA_PREFIX = 'homeassistant';

interface Rules {
  readonly write: readonly string[];
  readonly read: readonly string[];
}

/** What a service login may do, by role. */
const SERVICE_RULES = {
  [BRIDGE_LOGIN]: () => ({ write: [], read: ['sensors/#'] }),
  [READER_LOGIN]: (ha: string) => ({ write: [`${ha}/status`], read: ['sensors/#', `${ha}/#`] }),
  [HEALTH_LOGIN]: () => ({ write: [], read: ['$SYS/broker/uptime'] }),
} as const satisfies Record<string, (ha: string) => Rules>;

type Role = keyof typeof SERVICE_RULES;

/** A further login of a role: the role's name, "_", then [a-z0-9-]{1,32}. */
const NAMED = /^(hostpulse_(?:bridge|reader))_([a-z0-9][a-z0-9-]{0,31})$/;

/** The role of a service login (hostpulse_bridge, hostpulse_bridge_<name>, …), or undefined. */
export function serviceRole(login: string): Role | undefined {
  if (Object.hasOwn(SERVICE_RULES, login)) return login as Role;
  return NAMED.exec(login)?.[1] as Role | undefined;
}

/** Why `login` cannot be a service login, or undefined when it can. */
export function serviceLoginProblem(login: string): string | undefined {
  if (serviceRole(login) !== undefined) return undefined;
  return `must be ${Object.keys(SERVICE_RULES).join(', ')}, or ${BRIDGE_LOGIN}_<name> / ${READER_LOGIN}_<name> with <name> of 1–32 [a-z0-9-]`;
}

/** Does an MQTT topic filter (with + and #) match a topic? */
export function matches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** An agent's rules, with `login` standing for its host name (Mosquitto: %u). */
const agentRules = (login: string, ha: string): Rules => ({
  write: [`sensors/${login}/#`, `${ha}/+/${login}/+/config`],
  read: [`${ha}/+/${login}/+/config`, `${ha}/status`],
});

function rules(login: string, ha = HA_PREFIX): Rules {
  const role = serviceRole(login);
  if (role !== undefined) return SERVICE_RULES[role](ha);
  // Mosquitto substitutes %u verbatim: only host names get the agent's rights.
  if (!isValidHost(login)) return { write: [], read: [] };
  return agentRules(login, ha);
}

export function mayPublish(login: string, topic: string): boolean {
  if (topic.startsWith('$')) return false;
  return rules(login).write.some((f) => matches(f, topic));
}

export function mayRead(login: string, topic: string): boolean {
  // "#" and "+" never match topics starting with "$" unless the filter names it.
  return rules(login).read.some((f) => matches(f, topic) && (!topic.startsWith('$') || f.startsWith('$')));
}

/** Why `prefix` cannot be a discovery prefix (as the agent's HA_DISCOVERY_PREFIX), or undefined. */
export function haPrefixProblem(prefix: string): string | undefined {
  return /^[^+#/\0]+$/.test(prefix) ? undefined : 'must be one MQTT topic level, without "+", "#", "/" or NUL';
}

/**
 * Mosquitto's acl_file for these logins: the agents' rules as patterns (%u: the login), then a
 * block for each service login among them. Host logins need no line of their own. `ha`: the Home
 * Assistant discovery prefix the agents and readers use.
 */
export function mosquittoAcl(logins: Iterable<string>, ha = HA_PREFIX): string {
  const agent = agentRules('%u', ha);
  const lines = [
    '# hostpulse: who may read and write what (Mosquitto 2.0 acl_file).',
    '# Written by `hostpulse enrol` with the password file, from broker/acl.ts: do not edit,',
    '# re-run enrol instead (it rewrites this file).',
    '#',
    '# Agents log in with their host name ([a-z0-9-], enforced by enrol, so %u cannot escape its',
    '# subtree); service logins contain "_", which no host name can. Each agent writes its samples',
    '# and retained availability under sensors/<host>/, keeps its own Home Assistant discovery configs',
    "# (node id = its host name) and reads them back, and reads Home Assistant's birth message.",
    `# Discovery prefix: ${ha} (enrol's HA_DISCOVERY_PREFIX).`,
    ...agent.write.map((f) => `pattern write ${f}`),
    ...agent.read.map((f) => `pattern read ${f}`),
  ];
  for (const login of [...new Set(logins)].filter((l) => serviceRole(l) !== undefined).sort()) {
    const r = rules(login, ha);
    lines.push('', `user ${login}`, ...r.read.map((f) => `topic read ${f}`), ...r.write.map((f) => `topic write ${f}`));
  }
  return `${lines.join('\n')}\n`;
}
