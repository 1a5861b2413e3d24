/**
 * MQTT over TLS with certificate verification always on, on real services: Mosquitto 2.0, the
 * embedded broker of `hostpulse up`, the built CLI's agent and bridge, InfluxDB 1.6. The certificates
 * are made for each run by `openssl` (test/harness/certs.ts): a CA, a server certificate for
 * 127.0.0.1 and localhost, an expired one, client certificates, and an unrelated CA.
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { connect as connectTcp } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../broker/server.js';
import { BRIDGE_LOGIN } from '../../broker/acl.js';
import { hashLine } from '../../broker/passwd.js';
import { MqttConnection, type MqttSettings } from '../../common/mqtt.js';
import { makeTestCerts, type TestCerts } from '../harness/certs.js';
import { ROOT, execCli, runCli, stopAllCli, type Running } from '../harness/cli.js';
import { startInfluxDB, type InfluxDB } from '../harness/influxdb.js';
import { captureLogger } from '../harness/logs.js';
import { startMosquitto, type Mosquitto } from '../harness/mosquitto.js';
import { waitFor } from '../harness/mqtt.js';
import { acceptsTcp, freePort, startServer, tempDir } from '../harness/process.js';
import { startShippedMosquitto, type ShippedMosquitto } from '../harness/shipped-mosquitto.js';

const REPLAY = join(ROOT, 'test/fixtures/machines/windows-laptop.json');
/** How Node words a broker certificate signed by a CA it does not trust. */
const UNTRUSTED =
  /TLS handshake failed: (self-signed certificate in certificate chain|unable to verify the first certificate|unable to get local issuer certificate)/;

let certs: TestCerts;
let influx: InfluxDB;
let mosquitto: Mosquitto;
/** Mosquitto's TLS listeners: plain server certificate, client certificate required, expired certificate, secure WebSocket. */
let port: { tls: number; clientCert: number; expired: number; wss: number };

beforeAll(async () => {
  certs = await makeTestCerts();
  port = { tls: await freePort(), clientCert: await freePort(), expired: await freePort(), wss: await freePort() };
  const listener = (p: number, pair: { cert: string; key: string }) => [
    `listener ${p} 127.0.0.1`,
    `certfile ${pair.cert}`,
    `keyfile ${pair.key}`,
    'tls_version tlsv1.2',
  ];
  [influx, mosquitto] = await Promise.all([
    startInfluxDB(['tls']),
    startMosquitto({
      config: [
        'allow_anonymous true',
        ...listener(port.tls, certs.server),
        ...listener(port.clientCert, certs.server),
        `cafile ${certs.ca}`,
        'require_certificate true',
        ...listener(port.expired, certs.expired),
        ...listener(port.wss, certs.server),
        'protocol websockets',
      ],
    }),
  ]);
}, 30_000);

afterAll(async () => {
  await stopAllCli();
  await Promise.all([influx?.stop(), mosquitto?.stop()]);
  await certs?.remove();
});

/** `hostpulse agent --once` from a recorded laptop. */
function agentOnce(host: string, env: Record<string, string>) {
  return execCli(['agent', '--once', '--host', host, '--replay', REPLAY], env);
}

function startBridge(env: Record<string, string>): Running {
  return runCli(['bridge'], { INFLUX_API: '1', INFLUX_URL: influx.url, INFLUX_DATABASE: 'tls', FLUSH_INTERVAL: '100ms', ...env });
}

async function stored(host: string): Promise<number> {
  const series = await waitFor(
    `samples of ${host} in InfluxDB`,
    async () => (await influx.query(`SELECT "level" FROM "battery" WHERE "host" = '${host}'`, 'tls')).series[0],
  );
  return series.values[0]?.[1] as number;
}

/** A raw MQTT 3.1.1 CONNECT on plain TCP; resolves with what came back before the close (or 3 s). */
function rawConnect(tcpPort: number): Promise<{ reply: Buffer; closed: boolean }> {
  const connect = Buffer.from([0x10, 15, 0, 4, ...Buffer.from('MQTT'), 4, 2, 0, 60, 0, 3, ...Buffer.from('raw')]);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connectTcp(tcpPort, '127.0.0.1', () => socket.write(connect));
    const done = (closed: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ reply: Buffer.concat(chunks), closed });
    };
    const timer = setTimeout(() => done(false), 3000);
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      if (d[0] === 0x20) done(false); // a CONNACK
    });
    socket.on('error', () => undefined);
    socket.on('close', () => done(true));
  });
}

const CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x00]);

describe('agent and bridge on Mosquitto over TLS', () => {
  it('carry samples from an agent over mqtts:// through a bridge over mqtts:// into InfluxDB', async () => {
    // The bridge by name (localhost), the agent by address (127.0.0.1): both are in the certificate.
    const bridge = startBridge({ MQTT_URL: `mqtts://localhost:${port.tls}`, MQTT_CA_FILE: certs.ca, MQTT_CLIENT_ID: 'tls-bridge-mosquitto' });
    try {
      await bridge.waitForLog((l) => l.msg === 'subscribed');
      const agent = await agentOnce('tls-mosquitto', { MQTT_URL: `mqtts://127.0.0.1:${port.tls}`, MQTT_CA_FILE: certs.ca });
      expect(agent.code, agent.stderr).toBe(0);
      expect(await stored('tls-mosquitto')).toBe(44);
    } finally {
      await bridge.stop();
    }
  });

  it('connect over wss:// (MQTT over secure WebSocket) with the same verification', async () => {
    const url = `wss://localhost:${port.wss}`;
    const [trusted, untrusted] = await Promise.all([
      agentOnce('tls-wss', { MQTT_URL: url, MQTT_CA_FILE: certs.ca }),
      agentOnce('tls-wss-wrong-ca', { MQTT_URL: url, MQTT_CA_FILE: certs.otherCa }),
    ]);
    expect(trusted.code, trusted.stderr).toBe(0);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(UNTRUSTED);
  });

  it('refuses a plain MQTT client on the TLS port: no CONNACK', async () => {
    expect((await rawConnect(mosquitto.port)).reply.subarray(0, 4)).toEqual(CONNACK); // the control: the plain port answers
    const { reply, closed } = await rawConnect(port.tls);
    expect(closed).toBe(true);
    expect(reply[0]).not.toBe(0x20);
    const agent = await agentOnce('tls-plain', { MQTT_URL: `mqtt://127.0.0.1:${port.tls}` });
    expect(agent.code).toBe(1);
    expect(agent.stderr).toContain('could not connect to mqtt://127.0.0.1');
  });

  it('fails the handshake when the agent trusts another CA, or only the system CAs: --once exits 1 saying why', async () => {
    const [wrongCa, systemCas] = await Promise.all([
      agentOnce('tls-wrong-ca', { MQTT_URL: `mqtts://127.0.0.1:${port.tls}`, MQTT_CA_FILE: certs.otherCa }),
      agentOnce('tls-system-ca', { MQTT_URL: `mqtts://127.0.0.1:${port.tls}` }),
    ]);
    expect(wrongCa.code).toBe(1);
    expect(wrongCa.stderr).toMatch(UNTRUSTED);
    expect(systemCas.code).toBe(1);
    expect(systemCas.stderr).toMatch(UNTRUSTED);
  });

  it('keeps a running agent that trusts another CA retrying, with the reason in its warn line', async () => {
    const agent = runCli(['agent', '--host', 'tls-retrying', '--replay', REPLAY], { MQTT_URL: `mqtts://127.0.0.1:${port.tls}`, MQTT_CA_FILE: certs.otherCa });
    try {
      const second = await agent.waitForLog((l) => l.msg === 'broker unreachable, retrying' && l['attempt'] === 2);
      expect(second['reason']).toMatch(UNTRUSTED);
      expect(second['level']).toBe(40);
      expect(agent.child.exitCode).toBeNull();
    } finally {
      await agent.stop();
    }
  });

  it('fails the handshake with a broker whose certificate has expired', async () => {
    const agent = await agentOnce('tls-expired', { MQTT_URL: `mqtts://127.0.0.1:${port.expired}`, MQTT_CA_FILE: certs.ca });
    expect(agent.code).toBe(1);
    expect(agent.stderr).toContain('TLS handshake failed: certificate has expired');
  });

  it('with require_certificate: refuses a client without a certificate or with one of another CA, admits one with its certificate', async () => {
    const url = `mqtts://127.0.0.1:${port.clientCert}`;
    const [none, foreign, own] = await Promise.all([
      agentOnce('tls-no-cert', { MQTT_URL: url, MQTT_CA_FILE: certs.ca }),
      agentOnce('tls-foreign-cert', { MQTT_URL: url, MQTT_CA_FILE: certs.ca, MQTT_CERT_FILE: certs.otherClient.cert, MQTT_KEY_FILE: certs.otherClient.key }),
      agentOnce('tls-client-cert', { MQTT_URL: url, MQTT_CA_FILE: certs.ca, MQTT_CERT_FILE: certs.client.cert, MQTT_KEY_FILE: certs.client.key }),
    ]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('TLS handshake failed: tlsv13 alert certificate required');
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toContain('TLS handshake failed: tlsv1 alert unknown ca');
    expect(own.code, own.stderr).toBe(0);
  });
});

describe('hostpulse up with TLS, client certificates required', () => {
  let up: Running;
  let tlsPort: number;
  const clientCert = (): Record<string, string> => ({ MQTT_CA_FILE: certs.ca, MQTT_CERT_FILE: certs.client.cert, MQTT_KEY_FILE: certs.client.key });

  beforeAll(async () => {
    const [mqttPort, httpPort] = [await freePort(), await freePort()];
    tlsPort = await freePort();
    up = runCli(['up'], {
      MQTT_PORT: String(mqttPort),
      MQTT_WS_PORT: '0',
      HTTP_PORT: String(httpPort),
      LOCAL_AGENT: 'false',
      MQTT_TLS_PORT: String(tlsPort),
      MQTT_TLS_CERT_FILE: certs.server.cert,
      MQTT_TLS_KEY_FILE: certs.server.key,
      MQTT_TLS_CA_FILE: certs.ca,
    });
    await waitFor('hostpulse is up', () => (up.stderr().includes('hostpulse is up.') ? true : undefined), 20_000);
  }, 30_000);

  afterAll(() => up?.stop());

  it('says where TLS is served', () => {
    expect(up.stderr()).toContain(`TLS:        mqtts://127.0.0.1:${tlsPort}  (client certificates required)`);
  });

  it('carries samples from an agent through a bridge, both over mqtts:// with client certificates, into InfluxDB', async () => {
    const bridge = startBridge({ MQTT_URL: `mqtts://localhost:${tlsPort}`, MQTT_CLIENT_ID: 'tls-bridge-embedded', ...clientCert() });
    try {
      await bridge.waitForLog((l) => l.msg === 'subscribed');
      const agent = await agentOnce('tls-embedded', { MQTT_URL: `mqtts://127.0.0.1:${tlsPort}`, ...clientCert() });
      expect(agent.code, agent.stderr).toBe(0);
      expect(await stored('tls-embedded')).toBe(44);
    } finally {
      await bridge.stop();
    }
  });

  it('refuses a client without a certificate, or with one of another CA', async () => {
    const url = `mqtts://127.0.0.1:${tlsPort}`;
    const [none, foreign] = await Promise.all([
      agentOnce('tls-no-cert', { MQTT_URL: url, MQTT_CA_FILE: certs.ca }),
      agentOnce('tls-foreign-cert', { MQTT_URL: url, MQTT_CA_FILE: certs.ca, MQTT_CERT_FILE: certs.otherClient.cert, MQTT_KEY_FILE: certs.otherClient.key }),
    ]);
    // The client is dropped after the handshake; the broker's log says why.
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('connection closed');
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toContain('connection closed');
    const refused = () =>
      up
        .logs()
        .filter((l) => l.msg === 'TLS client certificate refused')
        .map((l) => String(l['err']));
    await waitFor('both refusals logged', () => (refused().length >= 2 ? true : undefined));
    expect(refused().sort()).toEqual(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'no client certificate']);
    expect(up.logs().find((l) => l['err'] === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')).toMatchObject({ subject: 'alice', issuer: 'hostpulse test other-ca' });
  });

  it('refuses a plain MQTT client on the TLS port: no CONNACK', async () => {
    const { reply, closed } = await rawConnect(tlsPort);
    expect(closed).toBe(true);
    expect(reply[0]).not.toBe(0x20);
  });
});

describe('the embedded broker over TLS, in process', () => {
  const login = { username: 'alice', password: 'alice-password-1' };
  const bridgeLogin = { username: BRIDGE_LOGIN, password: 'bridge-password-1' };
  const lines = new Map([login, bridgeLogin].map((l) => [l.username, hashLine(l.username, l.password)]));
  let secured: EmbeddedBroker;
  let expired: EmbeddedBroker;
  let ids = 0;

  function client(brokerPort: number, extra: Partial<MqttSettings> = {}): MqttConnection {
    return new MqttConnection(
      { url: `mqtts://localhost:${brokerPort}`, clientId: `tls-${ids++}`, clean: true, reconnect: false, tls: { ca: readFileSync(certs.ca) }, ...extra },
      captureLogger('tls-client').logger,
    );
  }

  beforeAll(async () => {
    const { logger } = captureLogger('embedded-tls');
    const base = { host: '127.0.0.1', port: 0, wsPort: 0, maxConnections: 2, maxPacketBytes: 4096 };
    secured = await startEmbeddedBroker(
      {
        ...base,
        logins: (user) => [lines.get(user)].filter((l): l is string => l !== undefined),
        tls: { port: 0, cert: readFileSync(certs.server.cert), key: readFileSync(certs.server.key) },
      },
      logger,
    );
    expired = await startEmbeddedBroker({ ...base, tls: { port: 0, cert: readFileSync(certs.expired.cert), key: readFileSync(certs.expired.key) } }, logger);
  });

  afterAll(() => Promise.all([secured?.close(), expired?.close()]));

  it('applies the logins of the TCP listener', async () => {
    const anonymous = client(secured.tlsPort);
    await expect(anonymous.waitConnected(5000)).rejects.toThrow(/bad user name or password/);
    await anonymous.close(true);
    const alice = client(secured.tlsPort, login);
    await alice.waitConnected(5000);
    await alice.close();
  });

  it('applies the packet size guard and the connection limit of the TCP listener', async () => {
    const received: string[] = [];
    const reader = client(secured.tlsPort, { ...bridgeLogin, onMessage: (_t, p) => void received.push(p.toString()) });
    await reader.waitConnected(5000);
    await reader.subscribe('sensors/alice/#', 1);
    const big = client(secured.tlsPort, login);
    await big.waitConnected(5000);
    // The third connection is over the limit of 2.
    const third = client(secured.tlsPort, login);
    await expect(third.waitConnected(3000)).rejects.toThrow();
    await third.close(true);
    big.publish('sensors/alice/cpu_temp', 'x'.repeat(10_000), { qos: 1 }).catch(() => undefined); // never acknowledged
    await waitFor('the oversized sender cut off', () => (big.connected ? undefined : true));
    await big.close(true);
    const small = client(secured.tlsPort, login);
    await small.waitConnected(5000);
    await small.publish('sensors/alice/cpu_temp', '42', { qos: 1 });
    await waitFor('the small message', () => (received.includes('42') ? true : undefined));
    expect(received).toEqual(['42']);
    await Promise.all([reader.close(true), small.close(true)]);
  });

  it('fails the handshake with an expired certificate, and logs each failure while retrying', async () => {
    const once = client(expired.tlsPort);
    await expect(once.waitConnected(5000)).rejects.toThrow('TLS handshake failed: certificate has expired');
    await once.close(true);
    const { logger, lines } = captureLogger('retrying');
    const retrying = new MqttConnection(
      { url: `mqtts://127.0.0.1:${expired.tlsPort}`, clientId: 'tls-retrying', clean: true, reconnect: true, tls: { ca: readFileSync(certs.ca) } },
      logger,
    );
    const warn = await waitFor('the warn line', () => lines.find((l) => l.msg === 'broker unreachable, retrying'));
    await retrying.close(true);
    expect(warn['reason']).toBe('TLS handshake failed: certificate has expired');
  });

  it('fails the handshake for a client that trusts another CA', async () => {
    const c = client(secured.tlsPort, { ...login, tls: { ca: readFileSync(certs.otherCa) } });
    await expect(c.waitConnected(5000)).rejects.toThrow(UNTRUSTED);
    await c.close(true);
  });
});

describe('the shipped Mosquitto with mosquitto/tls.conf.example enabled', () => {
  let shipped: ShippedMosquitto;
  let alice: string;

  beforeAll(async () => {
    shipped = await startShippedMosquitto(
      async (passwd, brokerPort) => {
        const enrolled = await execCli(['enrol', 'alice', '--passwd', passwd, '--mqtt-url', `mqtt://127.0.0.1:${brokerPort}`]);
        expect(enrolled.code, enrolled.stderr).toBe(0);
        alice = /^MQTT_PASSWORD=(.+)$/m.exec(enrolled.stdout)?.[1] ?? '';
      },
      {
        confD: { 'tls.conf': readFileSync(join(ROOT, 'mosquitto/tls.conf.example'), 'utf8') },
        files: { 'certs/ca.pem': certs.ca, 'certs/server.pem': certs.server.cert, 'certs/server.key': certs.server.key },
      },
    );
  }, 30_000);

  afterAll(() => shipped?.stop());

  it('accepts an mqtts:// client with the right CA and its login, and refuses anonymous ones as on 1883', async () => {
    const url = `mqtts://localhost:${shipped.tlsPort}`;
    const [enrolled, anonymous, wrongCa] = await Promise.all([
      agentOnce('alice', { MQTT_URL: url, MQTT_CA_FILE: certs.ca, MQTT_USERNAME: 'alice', MQTT_PASSWORD: alice }),
      agentOnce('alice', { MQTT_URL: url, MQTT_CA_FILE: certs.ca }),
      agentOnce('alice', { MQTT_URL: url, MQTT_CA_FILE: certs.otherCa, MQTT_USERNAME: 'alice', MQTT_PASSWORD: alice }),
    ]);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toMatch(/not authorized|bad user name or password/);
    expect(wrongCa.code).toBe(1);
    expect(wrongCa.stderr).toMatch(UNTRUSTED);
  });
});

describe('the bridge and an https:// InfluxDB whose certificate a private CA signed', () => {
  it('trusts the CA named by NODE_EXTRA_CA_CERTS, and fails verification without it', async () => {
    const dir = await tempDir('influxdb-https');
    const [httpsPort, rpcPort] = [await freePort(), await freePort()];
    await writeFile(
      join(dir, 'influxdb.conf'),
      `reporting-disabled = true\nbind-address = "127.0.0.1:${rpcPort}"\n[meta]\n  dir = "${dir}/meta"\n[data]\n  dir = "${dir}/data"\n  wal-dir = "${dir}/wal"\n` +
        `[http]\n  bind-address = "127.0.0.1:${httpsPort}"\n  log-enabled = false\n  https-enabled = true\n` +
        `  https-certificate = "${certs.server.cert}"\n  https-private-key = "${certs.server.key}"\n[monitor]\n  store-enabled = false\n[logging]\n  level = "warn"\n`,
    );
    const server = await startServer('influxd', 'influxd', ['-config', join(dir, 'influxdb.conf')], dir, () => acceptsTcp(httpsPort));
    const ca = readFileSync(certs.ca);
    const query = (q: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const req = request({ host: 'localhost', port: httpsPort, path: `/query?db=secure&q=${encodeURIComponent(q)}`, method: 'POST', ca }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve(body));
        });
        req.on('error', reject);
        req.end();
      });
    const env = { MQTT_URL: mosquitto.url, INFLUX_API: '1', INFLUX_URL: `https://localhost:${httpsPort}`, INFLUX_DATABASE: 'secure', FLUSH_INTERVAL: '100ms' };
    try {
      await waitFor('InfluxDB over https', () => query('CREATE DATABASE secure'));
      const untrusting = runCli(['bridge'], { ...env, MQTT_CLIENT_ID: 'tls-bridge-untrusting' });
      const refused = await untrusting.waitForLog((l) => l.msg === 'database unreachable, retrying');
      await untrusting.stop();
      expect(refused['err']).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify the first certificate/);
      const bridge = runCli(['bridge'], { ...env, MQTT_CLIENT_ID: 'tls-bridge-https', NODE_EXTRA_CA_CERTS: certs.ca });
      try {
        await bridge.waitForLog((l) => l.msg === 'subscribed');
        const agent = await agentOnce('tls-https-influx', { MQTT_URL: mosquitto.url });
        expect(agent.code, agent.stderr).toBe(0);
        await waitFor('samples over https', async () =>
          (await query(`SELECT "level" FROM "battery" WHERE "host" = 'tls-https-influx'`)).includes('44') ? true : undefined,
        );
      } finally {
        await bridge.stop();
      }
    } finally {
      await server.stop();
    }
  });
});

describe('configuration errors: one line naming the variable, exit 2', () => {
  const tlsUrl = 'mqtts://127.0.0.1:8883';

  async function problems(command: string, env: Record<string, string>): Promise<string[]> {
    const run = await execCli([command, ...(command === 'agent' ? ['--once', '--host', 'cfg'] : [])], env);
    expect(run.code, run.stderr).toBe(2);
    return run.stderr
      .split('\n')
      .slice(1)
      .filter((l) => l !== '');
  }

  it('names a missing file, a file that is not PEM, half a key pair, a key of another certificate, TLS files for a plain URL', async () => {
    const notPem = join(certs.dir, 'not-pem.txt');
    await writeFile(notPem, 'hello\n');
    const cases: [string, Record<string, string>, RegExp][] = [
      ['agent', { MQTT_URL: tlsUrl, MQTT_CA_FILE: '/nonexistent/ca.pem' }, /^MQTT_CA_FILE: cannot read \/nonexistent\/ca\.pem: no such file$/],
      [
        'bridge',
        { MQTT_URL: tlsUrl, MQTT_CA_FILE: notPem, INFLUX_URL: 'http://127.0.0.1:1', INFLUX_BUCKET: 'b' },
        /^MQTT_CA_FILE: .*not-pem\.txt is not a PEM certificate file/,
      ],
      [
        'agent',
        { MQTT_URL: tlsUrl, MQTT_KEY_FILE: certs.client.cert, MQTT_CERT_FILE: certs.client.cert },
        /^MQTT_KEY_FILE: .*client\.pem is not a PEM private key file/,
      ],
      ['agent', { MQTT_URL: tlsUrl, MQTT_CERT_FILE: certs.client.cert }, /^MQTT_KEY_FILE: is required when MQTT_CERT_FILE is set$/],
      [
        'bridge',
        { MQTT_URL: tlsUrl, MQTT_KEY_FILE: certs.client.key, INFLUX_URL: 'http://127.0.0.1:1', INFLUX_BUCKET: 'b' },
        /^MQTT_CERT_FILE: is required when MQTT_KEY_FILE is set$/,
      ],
      [
        'agent',
        { MQTT_URL: tlsUrl, MQTT_CERT_FILE: certs.client.cert, MQTT_KEY_FILE: certs.otherClient.key },
        /^MQTT_KEY_FILE: .* is not the key of the certificate in MQTT_CERT_FILE$/,
      ],
      [
        'bridge',
        { MQTT_URL: 'mqtt://127.0.0.1:1883', MQTT_CA_FILE: certs.ca, INFLUX_URL: 'http://127.0.0.1:1', INFLUX_BUCKET: 'b' },
        /^MQTT_CA_FILE: applies only to a TLS broker \(MQTT_URL mqtts:\/\/ or wss:\/\/\), and MQTT_URL is mqtt:\/\/$/,
      ],
      ['up', { MQTT_TLS_CERT_FILE: certs.server.cert }, /^MQTT_TLS_KEY_FILE: is required when MQTT_TLS_CERT_FILE is set$/],
      ['up', { MQTT_TLS_CA_FILE: certs.ca }, /^MQTT_TLS_CA_FILE: needs the TLS listener/],
      [
        'up',
        { MQTT_TLS_CERT_FILE: certs.server.cert, MQTT_TLS_KEY_FILE: '/nonexistent/server.key' },
        /^MQTT_TLS_KEY_FILE: cannot read \/nonexistent\/server\.key: no such file$/,
      ],
      ['up', { MQTT_CA_FILE: certs.ca }, /^MQTT_CA_FILE: not used by hostpulse up/],
    ];
    const results = await Promise.all(cases.map(([command, env]) => problems(command, env)));
    for (const [i, lines] of results.entries()) {
      const [command, env, line] = cases[i] as (typeof cases)[number];
      expect(lines, `${command} ${JSON.stringify(env)}`).toHaveLength(1);
      expect(lines[0], `${command} ${JSON.stringify(env)}`).toMatch(line);
    }
  });
});
