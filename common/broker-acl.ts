/**
 * The broker's access rules as code, for the embedded broker: the same rules as mosquitto/acl,
 * which the shipped Mosquitto enforces (a test runs one table of cases against both).
 *
 *   an agent (any login that is a host name) writes sensors/<login>/# and its own Home Assistant
 *     discovery configs <prefix>/+/<login>/+/config, reads those configs and <prefix>/status;
 *   hostpulse_bridge reads sensors/#;
 *   hostpulse_reader reads sensors/# and homeassistant/#, writes homeassistant/status only;
 *   hostpulse_health reads $SYS/broker/uptime.
 */
import { isValidHost } from '../protocol/index.js';

export const BRIDGE_LOGIN = 'hostpulse_bridge';
export const READER_LOGIN = 'hostpulse_reader';
export const HEALTH_LOGIN = 'hostpulse_health';

const HA = 'homeassistant';

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

function rules(login: string): { write: string[]; read: string[] } {
  switch (login) {
    case BRIDGE_LOGIN:
      return { write: [], read: ['sensors/#'] };
    case READER_LOGIN:
      return { write: [`${HA}/status`], read: ['sensors/#', `${HA}/#`] };
    case HEALTH_LOGIN:
      return { write: [], read: ['$SYS/broker/uptime'] };
    default:
      // Mosquitto substitutes %u verbatim: only host names get the agent's rights.
      if (!isValidHost(login)) return { write: [], read: [] };
      return { write: [`sensors/${login}/#`, `${HA}/+/${login}/+/config`], read: [`${HA}/+/${login}/+/config`, `${HA}/status`] };
  }
}

export function mayPublish(login: string, topic: string): boolean {
  if (topic.startsWith('$')) return false;
  return rules(login).write.some((f) => matches(f, topic));
}

export function mayRead(login: string, topic: string): boolean {
  // "#" and "+" never match topics starting with "$" unless the filter names it.
  return rules(login).read.some((f) => matches(f, topic) && (!topic.startsWith('$') || f.startsWith('$')));
}
