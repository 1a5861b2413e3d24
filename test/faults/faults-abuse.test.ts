/**
 * Abuse on real servers: one host floods at 5,000 messages a second for 20 s while another invents
 * 10,000 metric names. The bridge drops the excess, counts it by reason on GET /metrics and names
 * the host in its log; other hosts are stored in full. (limits.test.ts has a small, fast flood.)
 */
import { expect, it } from 'vitest';
import { bridgeEnv, rejectedByReason, startBridge } from '../harness/bridge.js';
import { count, ledger, startStream } from '../harness/load.js';
import { connect, waitFor } from '../harness/mqtt.js';
import { useServers } from '../harness/servers.js';

const DB = 'abuse';
const servers = useServers([DB]);

async function storedCount(query: string): Promise<number> {
  return ((await servers.influx.query(query, DB)).series[0]?.values[0]?.[1] as number | undefined) ?? 0;
}

it('drops and counts a 5,000 msg/s flood and 10,000 invented metric names; other hosts are stored in full', async () => {
  const RATE = 200; // HOST_RATE_LIMIT: a minute's worth (12,000) as burst
  const bridge = await startBridge(bridgeEnv(servers.broker.url, servers.influx.url, DB, 'abuse-bridge', { HOST_RATE_LIMIT: String(RATE) }));
  const quiet = startStream({ url: servers.broker.url, prefix: 'quiet', hosts: 2, perHost: 400, rate: 40 });
  const flood = startStream({ url: servers.broker.url, prefix: 'flooder', hosts: 1, perHost: 100_000, rate: 5000, stopAfterMs: 20_000 });
  const started = Date.now();
  const inventor = connect(servers.broker.url);
  await inventor.waitConnected(5000);
  const invented: Promise<void>[] = [];
  for (let i = 0; i < 10_000; i++) invented.push(inventor.publish(`sensors/inventor/disk_n${i}_usage`, '5', { qos: 1 }));
  for (let i = 0; i < 500; i++) invented.push(inventor.publish(`sensors/inventor/fan${i}_rpm`, '900', { qos: 1 }));
  await Promise.all(invented);
  await inventor.close();

  const flooded = count(await flood.done);
  const floodSeconds = (Date.now() - started) / 1000;
  expect(floodSeconds).toBeLessThan(25); // bounded
  expect(flooded).toBeGreaterThan(20_000); // a flood: well over the burst allowance
  const acked = await quiet.done;
  expect(await ledger(servers.influx, DB, 'quiet', acked)).toEqual([]);

  const total = count(acked) + flooded + 10_500;
  await waitFor('every message received', async () => ((await bridge.metric('hostpulse_bridge_received_total')) >= total ? true : undefined), 60_000);
  await waitFor('the queue drained', async () => ((await bridge.metric('hostpulse_bridge_queue_points')) === 0 ? true : undefined), 30_000);
  const rejected = rejectedByReason(await bridge.metrics());
  const floodStored = await storedCount(`SELECT count("usage") FROM "cpu" WHERE "host" = 'flooder-0'`);
  // Every flooded message was either stored or dropped as rate_limited; what passed is the bucket's bound.
  expect(floodStored + (rejected['rate_limited'] ?? 0)).toBe(flooded);
  expect(floodStored).toBeGreaterThanOrEqual(RATE * 60);
  expect(floodStored).toBeLessThanOrEqual(RATE * (60 + floodSeconds + 2));
  expect(rejected).toEqual({ rate_limited: flooded - floodStored, too_many_metrics: 9000, unknown_metric: 500 });
  const series = await servers.influx.query(`SHOW TAG VALUES FROM "disk" WITH KEY = "disk" WHERE "host" = 'inventor'`, DB);
  expect(series.series[0]?.values).toHaveLength(1000); // MAX_METRICS_PER_HOST
  // Which host: the bridge's log names it (one line per reason and minute).
  const logged = bridge.logs().filter((l) => l.msg === 'message rejected');
  expect(logged.find((l) => l['reason'] === 'rate_limited')?.['topic']).toBe('sensors/flooder-0/cpu_usage');
  expect(String(logged.find((l) => l['reason'] === 'too_many_metrics')?.['topic'])).toMatch(/^sensors\/inventor\//);
  expect(await bridge.metric('hostpulse_bridge_missing_total')).toBe(0); // dropped by a limit is not missing
  expect(bridge.child.exitCode).toBeNull();
  expect(await bridge.stop()).toBe(0);
}, 150_000);
