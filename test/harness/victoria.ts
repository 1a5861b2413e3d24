/** A real VictoriaMetrics: it answers InfluxDB's v2 write API (`/api/v2/write`). */
import { freePort, startServer, tempDir, type Server } from './process.js';

export interface Victoria extends Server {
  readonly url: string;
  /** Every stored sample, from `/api/v1/export`: series name and labels, values and ms timestamps. */
  export(match?: string): Promise<{ metric: Record<string, string>; values: number[]; timestamps: number[] }[]>;
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
    async export(match = '{__name__!=""}') {
      await fetch(`${url}/internal/force_flush`);
      const res = await fetch(`${url}/api/v1/export?${new URLSearchParams({ 'match[]': match })}`);
      const text = await res.text();
      return text
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as { metric: Record<string, string>; values: number[]; timestamps: number[] });
    },
  };
}
