/** A real InfluxDB 1.x (Debian's influxdb) in a temp dir, both its ports moved to free loopback ports. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, startServer, tempDir, type Server } from './process.js';

export interface InfluxDB extends Server {
  readonly url: string;
  /** Runs InfluxQL; returns the parsed JSON response (throws on HTTP errors or statement errors). */
  query(q: string, db?: string): Promise<InfluxResult>;
}

export interface InfluxSeries {
  readonly name: string;
  readonly tags?: Record<string, string>;
  readonly columns: string[];
  readonly values: unknown[][];
}
export interface InfluxResult {
  readonly series: InfluxSeries[];
}

/** `databases` are created once it answers. `httpPort` fixes the HTTP port (the RPC port is always free). */
export async function startInfluxDB(databases: readonly string[] = [], httpPort?: number, httpConfig: readonly string[] = []): Promise<InfluxDB> {
  const dir = await tempDir('influxdb');
  const [http, rpc] = [httpPort ?? (await freePort()), await freePort()];
  const conf = join(dir, 'influxdb.conf');
  await writeFile(
    conf,
    `reporting-disabled = true
bind-address = "127.0.0.1:${rpc}"
[meta]
  dir = "${dir}/meta"
[data]
  dir = "${dir}/data"
  wal-dir = "${dir}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:${http}"
  log-enabled = false
${httpConfig.map((l) => `  ${l}`).join('\n')}
[monitor]
  store-enabled = false
[logging]
  level = "warn"
`,
  );
  const url = `http://127.0.0.1:${http}`;
  const server = await launchInfluxd(dir, url);
  const query = async (q: string, db?: string): Promise<InfluxResult> => {
    const params = new URLSearchParams({ q, epoch: 'ms', ...(db ? { db } : {}) });
    const res = await fetch(`${url}/query`, { method: 'POST', body: params });
    const body = (await res.json()) as { results?: { series?: InfluxSeries[]; error?: string }[]; error?: string };
    const first = body.results?.[0];
    if (!res.ok || body.error || first?.error) throw new Error(`InfluxQL "${q}" failed: ${res.status} ${JSON.stringify(body)}`);
    return { series: first?.series ?? [] };
  };
  for (const db of databases) await query(`CREATE DATABASE "${db}"`);
  return { ...server, url, query };
}

function launchInfluxd(dir: string, url: string): Promise<Server> {
  return startServer('influxd', 'influxd', ['-config', join(dir, 'influxdb.conf')], dir, async () => (await fetch(`${url}/ping`)).status === 204);
}

/** Starts a stopped (or crashed) InfluxDB again on the same data directory and ports. */
export async function restartInfluxDB(influx: InfluxDB): Promise<InfluxDB> {
  if (influx.child.exitCode === null && influx.child.signalCode === null) throw new Error('InfluxDB is still running');
  return { ...(await launchInfluxd(influx.dir, influx.url)), url: influx.url, query: influx.query };
}
