/** A real VictoriaMetrics: it answers InfluxDB's v2 write API (`/api/v2/write`). */
import { freePort, startServer, tempDir, type Server } from './process.js';

/** A series as `/api/v1/export` gives it: `__name__` is `<measurement>_<field>` (e.g. disk_usage), the other labels are the tags. */
export interface Series {
  readonly metric: Record<string, string>;
  readonly values: number[];
  readonly timestamps: number[];
}

export interface Victoria extends Server {
  readonly url: string;
  /** Every stored sample, from `/api/v1/export`: series name and labels, values and ms timestamps. */
  export(match?: string): Promise<Series[]>;
}

/** Every stored sample of the series matching `match` (a selector such as `{host="office-pc"}`) on the VictoriaMetrics at `url`. */
export async function exportSeries(url: string, match = '{__name__!=""}'): Promise<Series[]> {
  // Samples are searchable once flushed from the ingestion buffers (within a second on its own).
  await fetch(`${url}/internal/force_flush`);
  const res = await fetch(`${url}/api/v1/export?${new URLSearchParams({ 'match[]': match })}`);
  if (!res.ok) throw new Error(`export ${match}: ${res.status} ${await res.text()}`);
  return (await res.text())
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Series);
}

export async function startVictoria(fixedPort?: number): Promise<Victoria> {
  const dir = await tempDir('victoria');
  const port = fixedPort ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const server = await startServer(
    'victoria-metrics',
    'victoria-metrics',
    [`-storageDataPath=${dir}/data`, `-httpListenAddr=127.0.0.1:${port}`, '-loggerLevel=ERROR', '-search.latencyOffset=0s'],
    dir,
    async () => (await fetch(`${url}/health`)).ok,
  );
  return {
    ...server,
    url,
    export: (match) => exportSeries(url, match),
  };
}
