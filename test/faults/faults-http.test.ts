/**
 * The HTTP server of `hostpulse up` and `hostpulse bridge` (common/health.ts) against clients that
 * hold sockets or come through another name (issue 12): idle and slow-header sockets are closed
 * past HTTP_MAX_CONNECTIONS and after the headers timeout, so that under a low open-file limit
 * the broker in the same process still takes logins; a Host that is not this machine's (DNS
 * rebinding) gets 421.
 */
import { execFileSync } from 'node:child_process';
import { request } from 'node:http';
import { connect as tcpConnect, type Socket } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parsePrometheus } from '../harness/bridge.js';
import { ROOT, execCli, runCli, stopAllCli, type Running } from '../harness/cli.js';
import { waitFor } from '../harness/mqtt.js';
import { tcpSockets } from '../harness/proc.js';
import { freePort, tempDir } from '../harness/process.js';

afterAll(() => stopAllCli());

async function up(env: Record<string, string> = {}): Promise<{ run: Running; mqtt: number; http: number }> {
  const [mqtt, http] = [await freePort(), await freePort()];
  const run = runCli(['up'], { MQTT_PORT: String(mqtt), MQTT_WS_PORT: '0', HTTP_PORT: String(http), LOCAL_AGENT: 'false', QUEUE_DIR: 'off', ...env });
  await waitFor('hostpulse up', () => (run.stderr().includes('hostpulse is up.') ? true : undefined), 20_000);
  return { run, mqtt, http };
}

/** GET with the headers given as they are (fetch would not send a Host of our choosing). */
function get(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      // An event stream stays open: its status is enough.
      if (res.headers['content-type'] === 'text/event-stream') return resolve((res.destroy(), { status: res.statusCode ?? 0, body: '' }));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('idle HTTP sockets', () => {
  it('are refused past HTTP_MAX_CONNECTIONS and closed after the headers timeout; MQTT logins and /healthz still get in under `ulimit -n 400`', async () => {
    const dir = await tempDir('http-flood');
    const passwd = join(dir, 'passwd');
    expect((await execCli(['enrol', 'flood-pc', '--passwd', passwd, '--password', 'flood-pc-password'])).code).toBe(0);
    const u = await up({ MQTT_PASSWD_FILE: passwd });
    // As `ulimit -n 400` before the start would (Node raises its soft limit to the hard one at start).
    execFileSync('prlimit', ['--pid', String(u.run.child.pid), '--nofile=400:400']);

    // 1,100 sockets held open: half send nothing, half trickle a header a second and never end them.
    let flooding = true;
    let opened = 0;
    let closedAtOnce = 0;
    const open = new Set<Socket>();
    const flood = (): void => {
      if (!flooding) return;
      const trickle = opened++ % 2 === 1;
      const started = Date.now();
      const socket = tcpConnect(u.http, '127.0.0.1');
      let timer: NodeJS.Timeout | undefined;
      socket.on('connect', () => {
        if (!trickle) return;
        socket.write('GET /api/hosts HTTP/1.1\r\nHost: 127.0.0.1\r\n');
        timer = setInterval(() => socket.write('X-Slow: 1\r\n'), 1000);
      });
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearInterval(timer);
        open.delete(socket);
        if (Date.now() - started < 1000) closedAtOnce++;
        setTimeout(flood, 50); // and again, for as long as the flood lasts
      });
      open.add(socket);
    };
    for (let i = 0; i < 1100; i++) flood();
    try {
      // Beyond the bound (256) the server closes new connections at once.
      await waitFor('connections refused', () => (closedAtOnce >= 1100 - 256 ? true : undefined), 20_000);
      const held = tcpSockets(u.run.child).filter((s) => s.localPort === u.http && s.state === '01').length;
      expect(held).toBeLessThanOrEqual(256);
      // The broker in the same process still has descriptors for a login, while the flood goes on.
      const agent = await execCli(['agent', '--once', '--host', 'flood-pc'], {
        MQTT_URL: `mqtt://127.0.0.1:${u.mqtt}`,
        MQTT_USERNAME: 'flood-pc',
        MQTT_PASSWORD: 'flood-pc-password',
      });
      expect(agent.code, agent.stderr).toBe(0);
    } finally {
      flooding = false;
    }
    // Those held are closed by the server: no headers within the timeout.
    await waitFor('the idle sockets closed', () => (open.size === 0 ? true : undefined), 30_000);
    const health = await get(u.http, '/healthz', { host: '127.0.0.1' });
    expect(health.status).toBe(200);
    const metrics = parsePrometheus((await get(u.http, '/metrics', { host: '127.0.0.1' })).body);
    expect(metrics.get('hostpulse_bridge_http_refused_total{reason="max_connections"}')).toBeGreaterThanOrEqual(1100 - 256);
    expect(u.run.logs().filter((l) => l.msg.startsWith('connection refused: too many open'))).toHaveLength(1); // throttled
    const hosts = JSON.parse((await get(u.http, '/api/hosts', { host: '127.0.0.1' })).body) as { hosts: { host: string }[] };
    expect(hosts.hosts.map((h) => h.host)).toContain('flood-pc');
    expect(await u.run.stop()).toBe(0);
  }, 120_000);
});

/** An IPv4 address of this machine that is not loopback, if it has one. */
const external = Object.values(networkInterfaces())
  .flat()
  .find((a) => a?.family === 'IPv4' && !a.internal)?.address;

describe('a flood from another address', () => {
  it.skipIf(external === undefined)('leaves the last connections to loopback clients: /healthz answers while the flood holds the rest', async () => {
    const u = await up({ HTTP_HOST: '0.0.0.0', HTTP_MAX_CONNECTIONS: '64' });
    let flooding = true;
    const open = new Set<Socket>();
    const flood = (): void => {
      if (!flooding) return;
      const socket = tcpConnect({ host: external, port: u.http, localAddress: external });
      socket.on('error', () => undefined);
      socket.on('close', () => (open.delete(socket), setTimeout(flood, 50)));
      open.add(socket);
    };
    for (let i = 0; i < 200; i++) flood();
    try {
      await waitFor('the flood at its bound', () =>
        tcpSockets(u.run.child).filter((s) => s.localPort === u.http && s.state === '01').length >= 48 ? true : undefined,
      );
      for (let i = 0; i < 5; i++) expect((await get(u.http, '/healthz', { host: '127.0.0.1' })).status).toBe(200);
      expect(tcpSockets(u.run.child).filter((s) => s.localPort === u.http && s.state === '01').length).toBeLessThanOrEqual(48);
    } finally {
      flooding = false;
      for (const s of open) s.destroy();
    }
    expect(await u.run.stop()).toBe(0);
  });
});

describe('the Host header', () => {
  it('is answered for IP addresses, loopback names, this machine and HTTP_ALLOWED_HOSTS; any other name gets 421 (DNS rebinding)', async () => {
    const u = await up({ HTTP_ALLOWED_HOSTS: 'nas.lan, .example.org' });
    const status = async (path: string, headers: Record<string, string>): Promise<number> => (await get(u.http, path, headers)).status;
    for (const host of [
      `127.0.0.1:${u.http}`,
      `localhost:${u.http}`,
      `[::1]:${u.http}`,
      '192.168.1.5:8080',
      '[fe80::1]',
      'pc.localhost',
      hostname(),
      'nas.lan',
      'NAS.LAN.',
      'example.org',
      'grafana.example.org:8080',
    ]) {
      expect(await status('/api/hosts', { host }), host).toBe(200);
    }
    // A rebinding page's requests carry its own name.
    const refused = await get(u.http, '/api/hosts', { host: `rebind.attacker.example:${u.http}` });
    expect(refused).toEqual({
      status: 421,
      body: `Host "rebind.attacker.example:${u.http}" is not served here: open this by IP address, localhost, or a name listed in HTTP_ALLOWED_HOSTS\n`,
    });
    for (const path of ['/', '/api/stream', '/healthz', '/metrics']) expect(await status(path, { host: 'rebind.attacker.example' }), path).toBe(421);
    for (const host of ['nas.lan.attacker.example', 'example.org.attacker.example', 'localhost.attacker.example', 'badexample.org'])
      expect(await status('/api/hosts', { host }), host).toBe(421);
    // Another web page's request (its Origin), though the Host is ours.
    expect(await status('/api/hosts', { host: '127.0.0.1', origin: 'http://attacker.example' })).toBe(403);
    expect(await status('/api/hosts', { host: '127.0.0.1', origin: 'null' })).toBe(403);
    expect(await status('/api/hosts', { host: 'nas.lan', origin: 'http://nas.lan:8080' })).toBe(200);
    // A container's healthcheck, by loopback address.
    expect(await status('/healthz', { host: '127.0.0.1:8080' })).toBe(200);
    const metrics = parsePrometheus((await get(u.http, '/metrics', { host: '127.0.0.1' })).body);
    expect(metrics.get('hostpulse_bridge_http_refused_total{reason="host"}')).toBe(9);
    expect(metrics.get('hostpulse_bridge_http_refused_total{reason="origin"}')).toBe(2);
    expect(u.run.logs().find((l) => l.msg.startsWith('request refused: its Host'))).toMatchObject({ host: `rebind.attacker.example:${u.http}` });
    expect(await u.run.stop()).toBe(0);
  });

  it('refuses HTTP_ALLOWED_HOSTS that are not host names, in one line', async () => {
    const result = await execCli(['bridge'], { INFLUX_URL: 'http://127.0.0.1:1', INFLUX_BUCKET: 'b', HTTP_ALLOWED_HOSTS: 'nas.lan,http://x/,a b' });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('HTTP_ALLOWED_HOSTS: must be host names separated by commas, such as nas.lan,.example.org or * (got "http://x/", "a b")');
  });

  it("guards the agent's /healthz and /metrics the same way, with its own HTTP_ALLOWED_HOSTS", async () => {
    const port = await freePort();
    const agent = runCli(['agent', '--host', 'host-check-pc', '--replay', join(ROOT, 'test/fixtures/machines/linux-laptop.json')], {
      MQTT_URL: 'mqtt://127.0.0.1:1',
      HTTP_PORT: String(port),
      HTTP_ALLOWED_HOSTS: 'pc.lan',
    });
    await waitFor(
      'the agent answering',
      async () => ((await get(port, '/metrics', { host: '127.0.0.1' }).catch(() => undefined))?.status === 200 ? true : undefined),
      20_000,
    );
    expect((await get(port, '/metrics', { host: 'pc.lan' })).status).toBe(200);
    expect((await get(port, '/metrics', { host: 'rebind.attacker.example' })).status).toBe(421);
    expect((await get(port, '/healthz', { host: 'rebind.attacker.example' })).status).toBe(421);
    await agent.stop();
  });

  it('takes * to answer any Host', async () => {
    const u = await up({ HTTP_ALLOWED_HOSTS: '*' });
    expect((await get(u.http, '/api/hosts', { host: 'anything.example' })).status).toBe(200);
    expect(await u.run.stop()).toBe(0);
  });
});
