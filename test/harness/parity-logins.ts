/**
 * The logins the broker-parity tests use on both brokers (the shipped Mosquitto and `up`'s): two PCs
 * and the service logins, written into a password file by `hostpulse enrol` as a user would.
 */
import { execCli } from './cli.js';

export const LOGINS = {
  alice: 'alice-password-1',
  bob: 'bob-password-12',
  hostpulse_bridge: 'bridge-password-1',
  hostpulse_reader: 'reader-password-1',
  hostpulse_health: 'health-password-1',
};
export type Login = keyof typeof LOGINS;

/** MQTT credentials of a login. */
export const as = (login: Login): { username: string; password: string } => ({ username: login, password: LOGINS[login] });

/** Enrols every login into `passwd` (`enrol --services`, then each PC); throws with enrol's stderr if one fails. */
export async function enrolLogins(passwd: string): Promise<void> {
  const runs = [
    await execCli(['enrol', '--services', '--passwd', passwd], {
      MQTT_BRIDGE_PASSWORD: LOGINS.hostpulse_bridge,
      MQTT_READER_PASSWORD: LOGINS.hostpulse_reader,
      MQTT_HEALTHCHECK_PASSWORD: LOGINS.hostpulse_health,
    }),
  ];
  for (const host of ['alice', 'bob'] as const) runs.push(await execCli(['enrol', host, '--passwd', passwd, '--password', LOGINS[host]]));
  const failed = runs.find((r) => r.code !== 0);
  if (failed) throw new Error(`hostpulse enrol failed (${failed.code}): ${failed.stderr}`);
}
