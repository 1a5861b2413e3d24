/** What the database stand-in (VictoriaMetrics) holds, read through the stack's published port. */

export interface Series {
  /** `__name__` is `<measurement>_<field>` (e.g. disk_usage), the other labels are the tags (host, disk…). */
  readonly metric: Record<string, string>;
  readonly values: number[];
  readonly timestamps: number[];
}

/** Every stored sample of the series matching `match` (a series selector such as `{host="office-pc"}`). */
export async function exportSeries(url: string, match: string): Promise<Series[]> {
  // Samples are searchable once flushed from the ingestion buffers (within a second on its own).
  await fetch(`${url}/internal/force_flush`);
  const res = await fetch(`${url}/api/v1/export?${new URLSearchParams({ 'match[]': match })}`);
  if (!res.ok) throw new Error(`export ${match}: ${res.status} ${await res.text()}`);
  return (await res.text())
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Series);
}

/** The number of samples in these series. */
export const sampleCount = (series: readonly Series[]): number => series.reduce((n, s) => n + s.values.length, 0);
