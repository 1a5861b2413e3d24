/** The figures of a run as one table, and the results file (machine, versions, settings, table). */
import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';

export interface Figure {
  readonly id: string;
  readonly label: string;
  readonly value: number;
  readonly unit: string;
  /** The raw limit this figure is compared with (another figure's id): the ratio column. */
  readonly ref?: string;
  /** Pass/fail: the ratio (with `ref`) or the value against a bound. */
  readonly target?: { readonly op: '>=' | '<='; readonly bound: number };
  readonly note?: string;
}

const fmt = (n: number): string =>
  !Number.isFinite(n) ? String(n) : Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(Math.abs(n) >= 10 ? 1 : 2);

export function renderTable(figures: readonly Figure[]): string {
  const byId = new Map(figures.map((f) => [f.id, f]));
  const rows = figures.map((f) => {
    const ref = f.ref === undefined ? undefined : byId.get(f.ref);
    const ratio = ref ? f.value / ref.value : undefined;
    const ratioText = ratio === undefined ? (f.ref ? `(${f.ref} not measured)` : '') : `${ratio.toFixed(2)} × ${ref?.id}`;
    let target = '';
    let verdict = '';
    if (f.target) {
      const op = f.target.op === '>=' ? '≥' : '≤';
      const onRatio = f.ref !== undefined;
      target = onRatio ? `${op} ${f.target.bound} × ${f.ref}` : `${op} ${fmt(f.target.bound)} ${f.unit}`;
      const measured = onRatio ? ratio : f.value;
      verdict = measured === undefined ? 'n/a' : (f.target.op === '>=' ? measured >= f.target.bound : measured <= f.target.bound) ? 'pass' : '**FAIL**';
    }
    return `| ${f.label} (${f.id}) | ${fmt(f.value)} | ${f.unit} | ${ratioText} | ${target} | ${verdict} |${f.note ? ` ${f.note} |` : ' |'}`;
  });
  return ['| figure | value | unit | ratio | target | result | notes |', '|---|---:|---|---|---|---|---|', ...rows].join('\n');
}

function version(command: string, args: readonly string[]): string {
  try {
    return (
      execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 })
        .split('\n')[0]
        ?.trim() ?? '?'
    );
  } catch (error) {
    // mosquitto -h exits 3 after printing its version
    const out = (error as { stdout?: string }).stdout ?? '';
    return out.split('\n')[0]?.trim() || '?';
  }
}

export function machine(): Record<string, string> {
  const list = cpus();
  return {
    date: new Date().toISOString(),
    cpu: `${list[0]?.model ?? '?'} × ${list.length}`,
    memory: `${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    kernel: version('uname', ['-sr']),
    node: process.version,
    mosquitto: version('mosquitto', ['-h']),
    influxdb: version('influxd', ['version']),
  };
}

export function resultsMarkdown(info: Record<string, string>, settings: readonly string[], table: string, notes: readonly string[]): string {
  return [
    '# hostpulse benchmark results (`npm run bench`)',
    '',
    ...Object.entries(info).map(([k, v]) => `- ${k}: ${v}`),
    '',
    '## Settings',
    '',
    ...settings.map((s) => `- ${s}`),
    '',
    '## Figures',
    '',
    table,
    '',
    ...(notes.length > 0 ? ['## Notes', '', ...notes.map((n) => `- ${n}`), ''] : []),
  ].join('\n');
}
