/**
 * `hostpulse up`: the embedded broker, the bridge with its live view and a local agent in one process;
 * checked from outside (the built CLI), and the live view in real headless Chromium.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MqttConnection } from '../../common/mqtt.js';
import { ROOT, execCli, runCli, stopAllCli, type Running } from '../harness/cli.js';
import { startInfluxDB, type InfluxDB } from '../harness/influxdb.js';
import { captureLogger } from '../harness/logs.js';
import { waitFor } from '../harness/mqtt.js';
import { freePort, tempDir } from '../harness/process.js';

const FIXTURES = new URL('../fixtures/machines/', import.meta.url);
const ARTIFACTS = join(ROOT, 'test-artifacts');

interface Up {
  readonly run: Running;
  readonly mqtt: number;
  readonly ws: number;
  readonly http: number;
  readonly url: string;
}

async function up(env: Record<string, string> = {}): Promise<Up> {
  const [mqtt, ws, http] = [await freePort(), await freePort(), await freePort()];
  const run = runCli(['up'], { MQTT_PORT: String(mqtt), MQTT_WS_PORT: String(ws), HTTP_PORT: String(http), SAMPLE_INTERVAL: '1s', ...env });
  await waitFor('hostpulse is up', () => (run.stderr().includes('hostpulse is up.') ? true : undefined), 20_000);
  return { run, mqtt, ws, url: `http://127.0.0.1:${http}/`, http };
}

async function hosts(u: Up): Promise<{ host: string; online: boolean | null; values: Record<string, [number, number]> }[]> {
  const res = await fetch(`${u.url}api/hosts`);
  return ((await res.json()) as { hosts: { host: string; online: boolean | null; values: Record<string, [number, number]> }[] }).hosts;
}

afterAll(() => stopAllCli());

describe('hostpulse up', () => {
  it('runs broker, bridge and a local agent in one process, and says that history is not stored', async () => {
    const u = await up({ SENSORS_HOST: 'up-local' });
    expect(u.run.stderr()).toContain(`live view:  http://127.0.0.1:${u.http}/`);
    expect(u.run.stderr()).toContain('history:    NOT stored');
    const local = await waitFor('the local agent', async () => (await hosts(u)).find((h) => h.host === 'up-local' && h.values['cpu_usage']));
    expect(local.online).toBe(true);
    // Another PC publishes to the embedded broker like to any broker.
    const other = await execCli(['agent', '--once', '--replay', new URL('windows-laptop.json', FIXTURES).pathname, '--host', 'up-other'], {
      MQTT_URL: `mqtt://127.0.0.1:${u.mqtt}`,
    });
    expect(other.code, other.stderr).toBe(0);
    const laptop = await waitFor('the other PC', async () => (await hosts(u)).find((h) => h.host === 'up-other'));
    expect(laptop.values['battery_level']?.[0]).toBe(44);
    // And over MQTT over WebSocket, as browser tools connect.
    const overWs = await execCli(['agent', '--once', '--host', 'up-ws'], { MQTT_URL: `ws://127.0.0.1:${u.ws}` });
    expect(overWs.code, overWs.stderr).toBe(0);
    await waitFor('the WebSocket publisher', async () => (await hosts(u)).find((h) => h.host === 'up-ws'));
    const health = await fetch(`${u.url}healthz`);
    expect(await health.json()).toMatchObject({ ok: true, database: 'not configured' });
    expect(await u.run.stop()).toBe(0);
  });

  it('stores history when InfluxDB is configured', async () => {
    const influx: InfluxDB = await startInfluxDB(['up']);
    try {
      const u = await up({ SENSORS_HOST: 'up-stored', INFLUX_API: '1', INFLUX_URL: influx.url, INFLUX_DATABASE: 'up', FLUSH_INTERVAL: '100ms' });
      expect(u.run.stderr()).toContain(`history:    stored in ${influx.url}`);
      await waitFor('stored samples', async () => (await influx.query(`SELECT "usage" FROM "cpu" WHERE "host" = 'up-stored'`, 'up')).series[0]);
      expect(await u.run.stop()).toBe(0);
    } finally {
      await influx.stop();
    }
  });

  it('with logins: refuses anonymous clients, admits enrolled PCs, and runs its own agent', async () => {
    const dir = await tempDir('up-logins');
    const passwd = join(dir, 'passwd');
    const enrol = await execCli(['enrol', 'up-pc', '--passwd', passwd, '--password', 'up-pc-password']);
    expect(enrol.code).toBe(0);
    const u = await up({ SENSORS_HOST: 'up-self', MQTT_PASSWD_FILE: passwd });
    const anonymous = await execCli(['agent', '--once', '--host', 'up-pc'], { MQTT_URL: `mqtt://127.0.0.1:${u.mqtt}` });
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toContain('bad user name or password');
    const enrolled = await execCli(['agent', '--once', '--host', 'up-pc'], {
      MQTT_URL: `mqtt://127.0.0.1:${u.mqtt}`,
      MQTT_USERNAME: 'up-pc',
      MQTT_PASSWORD: 'up-pc-password',
    });
    expect(enrolled.code, enrolled.stderr).toBe(0);
    const seen = await waitFor('both hosts', async () => {
      const names = (await hosts(u)).map((h) => h.host);
      return names.includes('up-pc') && names.includes('up-self') ? names : undefined;
    });
    expect(seen.sort()).toEqual(['up-pc', 'up-self']);
    expect(await u.run.stop()).toBe(0);
  });

  it('refuses to listen beyond this machine without logins', async () => {
    const run = await execCli(['up'], { MQTT_BIND: '0.0.0.0', MQTT_PORT: String(await freePort()) });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('MQTT_BIND: listening on 0.0.0.0 (beyond this machine) needs logins: set MQTT_PASSWD_FILE');
  });
});

describe('live view in Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
  });
  afterAll(() => browser?.close());

  it('shows a host as it appears, updates it without a reload, and marks it offline', async () => {
    const u = await up({ LOCAL_AGENT: 'false' });
    const host = 'lv-workstation';
    const agent = runCli(['agent', '--replay', new URL('linux-2gpu-workstation.json', FIXTURES).pathname, '--host', host], {
      MQTT_URL: `mqtt://127.0.0.1:${u.mqtt}`,
      SAMPLE_INTERVAL: '1s',
    });
    const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
    await page.goto(u.url);
    const card = page.locator(`article[data-host="${host}"]`);
    await card.waitFor({ timeout: 15_000 });
    await expect(card.locator('.pill').textContent()).resolves.toBe('online');
    await expect(card.locator('[data-metric="gpu1_temp"]').textContent()).resolves.toBe('50 °C');
    await expect(page.locator('#notice').isVisible()).resolves.toBe(true); // no InfluxDB: says history is not stored

    // A new value arrives over MQTT and shows up without a reload.
    const publisher = new MqttConnection({ url: `mqtt://127.0.0.1:${u.mqtt}`, clientId: 'lv-test', clean: true, reconnect: false }, captureLogger('lv').logger);
    await publisher.waitConnected(5000);
    await agent.stop();
    await publisher.publish(`sensors/${host}/cpu_temp`, JSON.stringify({ value: 91.4, ts: Date.now() + 1000 }), { qos: 1 });
    await card.locator('[data-metric="cpu_temp"]', { hasText: /^91 °C$/ }).waitFor({ timeout: 10_000 });
    await expect(card.locator('[data-metric="cpu_temp"]').getAttribute('class')).resolves.toContain('hot');
    // The agent stopped cleanly: its availability went offline.
    await card.locator('.pill', { hasText: /^offline$/ }).waitFor({ timeout: 10_000 });
    await publisher.close();

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'live-view.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(ARTIFACTS, 'live-view-phone.png'), fullPage: true });
    const width = (await page.evaluate('document.documentElement.scrollWidth')) as number;
    expect(width).toBeLessThanOrEqual(390); // readable on a phone: no sideways scrolling
    await writeFile(join(ARTIFACTS, 'README.txt'), 'Screenshots of the live view, written by test/integration/up.test.ts.\n');
    await page.close();
    expect(await u.run.stop()).toBe(0);
  });
});
