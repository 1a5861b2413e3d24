/**
 * Reading the Grafana provisioning as Grafana does, without Grafana: a reader for the small YAML
 * subset our provisioning files use, the dashboards' panels and targets, and InfluxQL macro and
 * template-variable interpolation following Grafana's InfluxDB datasource.
 */

// ---------------------------------------------------------------------------------------------
// YAML: block mappings and sequences, quoted and plain scalars, comments. Anything else (anchors,
// block scalars, multi-line flow collections, tabs) is refused, so a file using it fails loudly.

export type Yaml = string | number | boolean | null | Yaml[] | { [key: string]: Yaml };

interface Line {
  readonly no: number;
  readonly indent: number;
  readonly text: string;
}

/** Index just past a quoted scalar starting at `start` (which holds the quote). */
function quoteEnd(s: string, start: number): number {
  const q = s[start];
  for (let i = start + 1; i < s.length; i++) {
    if (q === '"' && s[i] === '\\') {
      i++;
      continue;
    }
    if (s[i] === q) {
      if (q === "'" && s[i + 1] === "'") {
        i++;
        continue;
      }
      return i + 1;
    }
  }
  throw new Error(`unterminated quoted scalar: ${s}`);
}

/** Position of the `:` that ends a mapping key at the start of `s`, or -1. */
function keyColon(s: string): number {
  if (s.startsWith('"') || s.startsWith("'")) {
    const end = quoteEnd(s, 0);
    return s[end] === ':' && (end + 1 === s.length || s[end + 1] === ' ') ? end : -1;
  }
  for (let i = 0; i < s.length; i++) {
    if (s[i] === ':' && (i + 1 === s.length || s[i + 1] === ' ')) return i;
    if (s[i] === ' ' && s[i + 1] === '#') return -1;
  }
  return -1;
}

/** Removes a trailing comment from a value (not from inside a quoted scalar). */
function stripComment(value: string): string {
  const v = value.trimStart();
  if (v.startsWith('#')) return '';
  if (v.startsWith('"') || v.startsWith("'")) {
    const end = quoteEnd(v, 0);
    const rest = v.slice(end);
    if (rest.trim() !== '' && !rest.trim().startsWith('#')) throw new Error(`unexpected text after quoted scalar: ${value}`);
    return v.slice(0, end);
  }
  const hash = v.search(/\s#/);
  return (hash === -1 ? v : v.slice(0, hash)).trimEnd();
}

function scalar(raw: string): Yaml {
  const v = raw.trim();
  if (v.startsWith("'")) return v.slice(1, -1).replace(/''/g, "'");
  if (v.startsWith('"')) return JSON.parse(v) as string;
  if (v === '[]') return [];
  if (v === '{}') return {};
  if (v.startsWith('[') && v.endsWith(']'))
    return v
      .slice(1, -1)
      .split(',')
      .map((p) => scalar(p));
  if (/^[|>]/.test(v) || /^[&*!]/.test(v) || v.startsWith('{')) throw new Error(`unsupported YAML: ${v}`);
  if (v === '' || v === '~' || v === 'null') return null;
  if (v === 'true') return true;
  if (v === 'false') return false;
  if (/^-?\d+(\.\d+)?$/.test(v)) return Number(v);
  return v;
}

export function parseYaml(text: string): Yaml {
  const lines: Line[] = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.includes('\t')) throw new Error(`line ${i + 1}: tab in YAML`);
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed === '---') return;
    lines.push({ no: i + 1, indent: raw.length - raw.trimStart().length, text: raw.trim() });
  });
  let pos = 0;

  const block = (indent: number): Yaml => {
    const first = lines[pos];
    if (!first || first.indent !== indent) throw new Error(`line ${first?.no}: expected indentation ${indent}`);
    return first.text === '-' || first.text.startsWith('- ') ? sequence(indent) : mapping(indent);
  };

  const valueAfter = (rest: string, indent: number, no: number): Yaml => {
    const v = stripComment(rest);
    if (v !== '') return scalar(v);
    const next = lines[pos];
    if (next && next.indent > indent) return block(next.indent);
    if (next && next.indent === indent && (next.text === '-' || next.text.startsWith('- '))) return sequence(indent);
    if (!next || next.indent <= indent) return null;
    throw new Error(`line ${no}: cannot read the value`);
  };

  const mapping = (indent: number): Yaml => {
    const out: { [key: string]: Yaml } = {};
    while (pos < lines.length) {
      const line = lines[pos] as Line;
      if (line.indent < indent) break;
      if (line.indent > indent) throw new Error(`line ${line.no}: unexpected indentation`);
      if (line.text.startsWith('- ')) break;
      const colon = keyColon(line.text);
      if (colon === -1) throw new Error(`line ${line.no}: expected "key: value", got ${line.text}`);
      const rawKey = line.text.slice(0, colon);
      const key = String(scalar(rawKey));
      if (Object.hasOwn(out, key)) throw new Error(`line ${line.no}: duplicate key ${key}`);
      pos++;
      out[key] = valueAfter(line.text.slice(colon + 1), indent, line.no);
    }
    return out;
  };

  const sequence = (indent: number): Yaml => {
    const out: Yaml[] = [];
    while (pos < lines.length) {
      const line = lines[pos] as Line;
      if (line.indent !== indent || !(line.text === '-' || line.text.startsWith('- '))) {
        if (line.indent > indent) throw new Error(`line ${line.no}: unexpected indentation`);
        break;
      }
      const item = line.text.slice(1).trimStart();
      const itemIndent = indent + (line.text.length - item.length);
      if (item === '') {
        pos++;
        out.push(valueAfter('', indent, line.no));
      } else if (keyColon(item) !== -1) {
        // "- key: value": a mapping whose first key sits on the dash's line.
        lines[pos] = { no: line.no, indent: itemIndent, text: item };
        out.push(mapping(itemIndent));
      } else {
        pos++;
        out.push(scalar(stripComment(item)));
      }
    }
    return out;
  };

  const result = block(lines[0]?.indent ?? 0);
  if (pos !== lines.length) throw new Error(`line ${lines[pos]?.no}: unexpected content`);
  return result;
}

/** Walks a parsed YAML value by keys and indexes; throws with the path when something is missing. */
export function at(value: Yaml, ...path: (string | number)[]): Yaml {
  let v: Yaml | undefined = value;
  for (const step of path) {
    if (typeof step === 'number' && Array.isArray(v)) v = v[step];
    else if (typeof step === 'string' && v !== null && typeof v === 'object' && !Array.isArray(v)) v = v[step];
    else v = undefined;
    if (v === undefined) throw new Error(`no ${path.join('.')} in YAML`);
  }
  return v;
}

export function list(value: Yaml): Yaml[] {
  if (!Array.isArray(value)) throw new Error(`expected a YAML sequence, got ${JSON.stringify(value)}`);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Dashboards

export interface DatasourceRef {
  readonly type?: string;
  readonly uid?: string;
}

export interface Target {
  readonly refId: string;
  readonly datasource?: DatasourceRef;
  readonly rawQuery?: boolean;
  readonly query?: string;
  readonly resultFormat?: string;
  readonly alias?: string;
}

export interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly datasource?: DatasourceRef;
  readonly targets?: Target[];
  readonly panels?: Panel[];
  readonly repeat?: string;
  readonly interval?: string;
  readonly fieldConfig?: { defaults?: Record<string, unknown>; overrides?: { properties?: { id: string; value?: unknown }[] }[] };
  readonly transformations?: { id: string; options?: unknown }[];
}

export interface VariableDef {
  readonly name: string;
  readonly type: string;
  readonly datasource?: DatasourceRef;
  readonly query?: string | { query?: string };
  readonly refresh?: number;
  readonly multi?: boolean;
  readonly includeAll?: boolean;
  readonly allValue?: string | null;
}

export interface Dashboard {
  readonly uid: string;
  readonly title: string;
  readonly schemaVersion: number;
  readonly panels: Panel[];
  readonly templating?: { list: VariableDef[] };
}

/** Every panel, rows' nested panels included. */
export function allPanels(panels: readonly Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

export function variableQuery(v: VariableDef): string {
  const q = typeof v.query === 'string' ? v.query : v.query?.query;
  if (!q) throw new Error(`variable ${v.name} has no query`);
  return q;
}

/** Every data link URL in a panel's field config (defaults and overrides). */
export function dataLinks(panel: Panel): string[] {
  const urls: string[] = [];
  const fromLinks = (links: unknown): void => {
    if (Array.isArray(links)) for (const l of links as { url?: unknown }[]) if (typeof l.url === 'string') urls.push(l.url);
  };
  fromLinks(panel.fieldConfig?.defaults?.['links']);
  for (const o of panel.fieldConfig?.overrides ?? []) for (const p of o.properties ?? []) if (p.id === 'links') fromLinks(p.value);
  return urls;
}

// ---------------------------------------------------------------------------------------------
// Interpolation, as Grafana's InfluxDB datasource does it

/** A template variable's current value: one value, or several (a multi-value or "All" selection). */
export interface VariableValue {
  readonly value: string | readonly string[];
  /** The variable allows several values (multi or include All): its values are always regex-escaped. */
  readonly multi: boolean;
}

export interface Macros {
  /** What `$timeFilter` becomes, e.g. `time >= now() - 1h`. */
  readonly timeFilter: string;
  readonly intervalMs: number;
}

/** Grafana's escapeRegex. */
export function escapeRegex(value: string): string {
  return value.replace(/[\\^$*+?.()|[\]{}/]/g, '\\$&');
}

/** Grafana's InfluxDB `interpolateQueryExpr`: how one variable's value is written into a query. */
function formatValue(v: VariableValue, usedInRegex: boolean): string {
  const { value } = v;
  if (typeof value === 'string' && !Number.isNaN(Number.parseFloat(value))) return value;
  if (v.multi) return typeof value === 'string' ? escapeRegex(value) : `(${value.map(escapeRegex).join('|')})`;
  const single = typeof value === 'string' ? value : value.join(',');
  return usedInRegex ? escapeRegex(single) : single;
}

function duration(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

const VARIABLE = /\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?::([^}]+))?\}/g;
/** A `=~ /…/` or `!~ /…/` regex in a query (Grafana looks for these to decide on escaping). */
const REGEX_LITERAL = /[=!]~\s*\/((?:[^/\\\r\n]|\\.)+)\//g;

/**
 * Substitutes the macros (`$timeFilter`, `$__interval`, `$__interval_ms`) and template variables
 * (`$var`, `${var}`, `[[var]]`) of an InfluxQL query. Throws on any variable it does not know,
 * so a typo in a dashboard fails the test instead of reaching InfluxDB as text.
 */
export function interpolate(query: string, variables: Readonly<Record<string, VariableValue>>, macros: Macros): string {
  const regexSpans: [number, number][] = [...query.matchAll(REGEX_LITERAL)].map((m) => [m.index, m.index + m[0].length]);
  return query.replace(
    VARIABLE,
    (match: string, plain?: string, bracket?: string, _bracketFormat?: string, braced?: string, format?: string, offset?: number) => {
      const name = plain ?? bracket ?? braced;
      if (name === undefined) return match;
      if (name === 'timeFilter') return macros.timeFilter;
      if (name === '__interval' || name === 'interval') return duration(macros.intervalMs);
      if (name === '__interval_ms') return String(macros.intervalMs);
      const v = variables[name];
      if (!v) throw new Error(`unknown variable ${match} in ${query}`);
      const at = offset ?? 0;
      const inRegex = regexSpans.some(([s, e]) => at > s && at < e);
      if (format === 'regex') return typeof v.value === 'string' ? escapeRegex(v.value) : `(${v.value.map(escapeRegex).join('|')})`;
      if (format === 'raw') return typeof v.value === 'string' ? v.value : v.value.join(',');
      if (format !== undefined) throw new Error(`format ${format} not handled in ${query}`);
      return formatValue(v, inRegex);
    },
  );
}

/** The variables a query uses (macros left out). */
export function variablesIn(query: string): string[] {
  const names = new Set<string>();
  for (const m of query.matchAll(VARIABLE)) {
    const name = m[1] ?? m[2] ?? m[4];
    if (name && !['timeFilter', '__interval', 'interval', '__interval_ms'].includes(name)) names.add(name);
  }
  return [...names];
}
