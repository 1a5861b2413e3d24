/**
 * The broker's access rules as `hostpulse enrol` writes them for Mosquitto (acl beside the password
 * file), and the service logins a second bridge or home-automation tool gets. What Mosquitto makes of
 * the file is checked on the real broker (broker-config, faults-access, embedded-broker parity).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mayPublish, mayRead, mosquittoAcl, serviceRole } from '../../broker/acl.js';
import { readPasswd, verifyPassword } from '../../broker/passwd.js';
import { execCli } from '../harness/cli.js';
import { tempDir } from '../harness/process.js';

describe('service logins', () => {
  it.each([
    ['hostpulse_bridge', 'hostpulse_bridge'],
    ['hostpulse_bridge_b', 'hostpulse_bridge'],
    ['hostpulse_reader_node-red', 'hostpulse_reader'],
    ['hostpulse_health', 'hostpulse_health'],
    ['hostpulse_health_x', undefined], // one healthcheck login is enough
    ['hostpulse_bridge_', undefined],
    ['hostpulse_bridge_B', undefined],
    ['hostpulse_bridge_a/b', undefined],
    ['office-pc', undefined],
  ])('%s has the role %s', (login, role) => {
    expect(serviceRole(login)).toBe(role);
  });

  it('gives a further bridge or reader login the rights of its role, and nothing of an agent', () => {
    expect(mayRead('hostpulse_bridge_b', 'sensors/pc/cpu_temp')).toBe(true);
    expect(mayPublish('hostpulse_bridge_b', 'sensors/pc/cpu_temp')).toBe(false);
    expect(mayRead('hostpulse_reader_nodered', 'homeassistant/sensor/pc/cpu_temp/config')).toBe(true);
    expect(mayPublish('hostpulse_reader_nodered', 'homeassistant/status')).toBe(true);
    expect(mayPublish('hostpulse_reader_nodered', 'sensors/hostpulse_reader_nodered/cpu_temp')).toBe(false);
  });
});

describe('the acl_file', () => {
  it('holds the agent patterns and a block for each service login only', () => {
    const acl = mosquittoAcl(['office-pc', 'hostpulse_reader', 'hostpulse_bridge_b', 'hostpulse_bridge', 'hostpulse_health_x']);
    expect(acl.split('\n').filter((l) => l !== '' && !l.startsWith('#'))).toEqual([
      'pattern write sensors/%u/#',
      'pattern write homeassistant/+/%u/+/config',
      'pattern read homeassistant/+/%u/+/config',
      'pattern read homeassistant/status',
      'user hostpulse_bridge',
      'topic read sensors/#',
      'user hostpulse_bridge_b',
      'topic read sensors/#',
      'user hostpulse_reader',
      'topic read sensors/#',
      'topic read homeassistant/#',
      'topic write homeassistant/status',
    ]);
  });

  it('grants another Home Assistant discovery prefix instead of homeassistant', () => {
    const acl = mosquittoAcl(['hostpulse_reader'], 'hass');
    expect(acl).toContain('pattern write hass/+/%u/+/config\n');
    expect(acl).toContain('topic write hass/status\n');
    expect(acl).not.toMatch(/^[^#].*homeassistant/m);
  });
});

describe('hostpulse enrol', () => {
  it('writes the acl beside the password file with every change, for the logins in it', async () => {
    const dir = await tempDir('enrol-acl');
    const passwd = join(dir, 'passwd');
    const services = await execCli(['enrol', '--services', '--passwd', passwd], {
      MQTT_BRIDGE_PASSWORD: 'bridge-password-1',
      MQTT_READER_PASSWORD: 'reader-password-1',
      MQTT_HEALTHCHECK_PASSWORD: 'health-password-1',
    });
    expect(services.code, services.stderr).toBe(0);
    expect(await readFile(join(dir, 'acl'), 'utf8')).toContain('user hostpulse_reader\n');
    const added = await execCli(['enrol', '--service', 'hostpulse_reader_nodered', '--passwd', passwd]);
    expect(added.code, added.stderr).toBe(0);
    const password = /^MQTT_PASSWORD=(.+)$/m.exec(added.stdout)?.[1] ?? '';
    expect(added.stdout).toContain('MQTT_USERNAME=hostpulse_reader_nodered\n');
    expect(verifyPassword((await readPasswd(passwd)).get('hostpulse_reader_nodered') ?? '', password)).toBe(true);
    expect(await readFile(join(dir, 'acl'), 'utf8')).toContain('user hostpulse_reader_nodered\ntopic read sensors/#\n');
    const removed = await execCli(['enrol', '--remove', 'hostpulse_reader_nodered', '--passwd', passwd]);
    expect(removed.code, removed.stderr).toBe(0);
    expect(await readFile(join(dir, 'acl'), 'utf8')).not.toContain('hostpulse_reader_nodered');
  });

  it('refuses a service login outside the roles, and a discovery prefix that is not one topic level, in one line each', async () => {
    const dir = await tempDir('enrol-refused');
    const bad = await execCli(['enrol', '--service', 'hostpulse_admin', '--passwd', join(dir, 'passwd')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(
      /^hostpulse enrol: --service "hostpulse_admin" must be hostpulse_bridge, hostpulse_reader, hostpulse_health, or hostpulse_bridge_<name>/,
    );
    const prefix = await execCli(['enrol', 'office-pc', '--passwd', join(dir, 'passwd')], { HA_DISCOVERY_PREFIX: 'home/assistant' });
    expect(prefix.code).toBe(2);
    expect(prefix.stderr).toBe('hostpulse enrol: HA_DISCOVERY_PREFIX must be one MQTT topic level, without "+", "#", "/" or NUL\n');
  });
});
