/**
 * The agent's outbox, with a ledger: every round an agent logged as queued must reach InfluxDB with
 * its own sample time, through a broker outage, a clean restart and a SIGKILL of the agent. Its
 * bounds by size and by age are in agent-outbox.test.ts.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, type Running } from '../harness/cli.js';
import { RECONNECTED_WITHIN_MS, waitFor } from '../harness/mqtt.js';
import { freePort } from '../harness/process.js';
import { useServers } from '../harness/servers.js';

const LAPTOP = new URL('../fixtures/machines/linux-laptop.json', import.meta.url).pathname;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const servers = useServers(['hp'], { persistent: true });

/** The sample time of every round stored for `host` (one `uptime` point per round). */
async function roundsStored(host: string): Promise<number[]> {
  const r = await servers.influx.query(`SELECT "uptime" FROM "system" WHERE "host" = '${host}'`, 'hp');
  return (r.series[0]?.values ?? []).map((v) => v[0] as number);
}

/** The rounds an agent logged as queued (each is on disk once logged). */
function roundsQueued(agent: Running): number[] {
  return agent
    .logs()
    .filter((l) => l.msg === 'round sampled')
    .map((l) => l['ts'] as number);
}

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return Number(line?.split(' ').pop());
}

describe('agent outbox on real servers', () => {
  it('delivers every round taken while the broker was down, across a restart and a SIGKILL, each with its own time', async () => {
    const host = 'queue-pc';
    const queueDir = mkdtempSync(join(tmpdir(), 'hostpulse-agent-queue-'));
    const bridge = runCli(['bridge'], {
      MQTT_URL: servers.broker.url,
      INFLUX_API: '1',
      INFLUX_URL: servers.influx.url,
      INFLUX_DATABASE: 'hp',
      FLUSH_INTERVAL: '100ms',
    });
    await bridge.waitForLog((l) => l.msg === 'subscribed');
    const env = { MQTT_URL: servers.broker.url, SENSORS_HOST: host, SAMPLE_INTERVAL: '1s', QUEUE_DIR: queueDir, LOG_LEVEL: 'debug', HA_DISCOVERY: 'false' };
    const first = runCli(['agent', '--replay', LAPTOP], env);
    await waitFor('two rounds stored', async () => ((await roundsStored(host)).length >= 2 ? true : undefined));

    await servers.broker.halt();
    const downAt = Date.now();
    await first.waitForLog((l) => l.msg === 'broker unreachable, retrying');
    await sleep(3000);
    expect(await first.stop('SIGTERM')).toBe(0);
    const stopped = first.logs().find((l) => l.msg === 'agent stopped');
    expect(stopped).toMatchObject({ durable: true, dropped: 0 });
    expect(stopped?.['queued']).toBeGreaterThan(0);

    // A second agent finds the backlog, adds to it, and is killed without a chance to save anything.
    const second = runCli(['agent', '--replay', LAPTOP], env);
    const replay = await second.waitForLog((l) => l.msg === 'delivering the samples queued by the last run');
    expect(replay['samples']).toBe(stopped?.['queued']);
    await waitFor('two rounds queued by the second agent', () => (roundsQueued(second).length >= 2 ? true : undefined));
    expect(await second.stop('SIGKILL')).toBe(null);

    const httpPort = await freePort();
    const third = runCli(['agent', '--replay', LAPTOP], { ...env, HTTP_PORT: String(httpPort) });
    await waitFor('the third agent queues', () => (roundsQueued(third).length >= 2 ? true : undefined));
    const backlog = await metric(httpPort, 'hostpulse_agent_queue_samples');
    expect(backlog).toBeGreaterThan(0);
    expect(await metric(httpPort, 'hostpulse_agent_broker_connected')).toBe(0);
    expect((await fetch(`http://127.0.0.1:${httpPort}/healthz`)).status).toBe(503);

    servers.broker = await servers.broker.start();
    const upAt = Date.now();
    await third.waitForLog((l) => l.msg === 'broker connection restored', RECONNECTED_WITHIN_MS);
    await waitFor('the backlog delivered', async () => ((await metric(httpPort, 'hostpulse_agent_queue_samples')) === 0 ? true : undefined), 30_000);
    expect(await metric(httpPort, 'hostpulse_agent_published_total')).toBeGreaterThanOrEqual(backlog);
    expect(await metric(httpPort, 'hostpulse_agent_dropped_total')).toBe(0);
    expect(await third.stop('SIGTERM')).toBe(0);
    expect(third.logs().find((l) => l.msg === 'agent stopped')).toMatchObject({ queued: 0, dropped: 0 });

    // The ledger: every round any of the three agents queued is stored, with the time it was taken,
    // once the bridge is back too (its reconnects back off like the agent's).
    await bridge.waitForLog((l) => l.msg === 'broker connection restored', RECONNECTED_WITHIN_MS);
    const queued = [first, second, third].flatMap(roundsQueued).sort((a, b) => a - b);
    const stored = await waitFor('every queued round stored', async () => {
      const ts = await roundsStored(host);
      return ts.length >= queued.length ? ts : undefined;
    });
    expect(stored).toEqual(queued);
    expect(stored.filter((ts) => ts > downAt && ts < upAt).length).toBeGreaterThanOrEqual(6);
    // The agent's own backlog reached InfluxDB too: it grew during the outage.
    const backlogSeen = await servers.influx.query(`SELECT max("queued") FROM "hostpulse_agent" WHERE "host" = '${host}'`, 'hp');
    expect(backlogSeen.series[0]?.values[0]?.[1]).toBeGreaterThan(0);
    expect(await bridge.stop()).toBe(0);
  }, 120_000);

  it('refuses a queue directory another running agent uses, naming QUEUE_DIR', async () => {
    const queueDir = mkdtempSync(join(tmpdir(), 'hostpulse-agent-queue-'));
    const env = { MQTT_URL: servers.broker.url, SENSORS_HOST: 'twin-pc', SAMPLE_INTERVAL: '1s', QUEUE_DIR: queueDir, HA_DISCOVERY: 'false' };
    const one = runCli(['agent', '--replay', LAPTOP], env);
    await one.waitForLog((l) => l.msg === 'agent starting');
    const two = runCli(['agent', '--replay', LAPTOP], env);
    expect(await two.exited).toBe(1);
    expect(two.stderr()).toMatch(/^hostpulse agent: cannot start \(QUEUE_DIR\): queue directory .* is in use by process \d+$/m);
    expect(await one.stop()).toBe(0);
  });
});
