/**
 * Building blocks for the per-service config schemas. The one place zod is imported.
 *
 * Each service declares one schema keyed by environment variable names; `parseConfig` reads the
 * environment once at start, reports every problem at once, one line per variable, and returns
 * a frozen typed object. An empty variable counts as unset.
 */
import { z } from 'zod/v3';
import { parseAllowedHosts } from './allowed-hosts.js';
import { LOG_LEVELS } from './logger.js';

export { z };

export type Env = Readonly<Record<string, string | undefined>>;

export type ConfigResult<T> = { readonly ok: true; readonly config: Readonly<T> } | { readonly ok: false; readonly errors: readonly string[] };

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Parses `500ms`, `10s`, `1.5m`, `2h`, `7d` into milliseconds; undefined if malformed. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION.exec(text.trim());
  if (!m?.[1] || !m[2]) return undefined;
  return Math.round(Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]);
}

export function formatDuration(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** A duration such as `10s`, in milliseconds, with an inclusive minimum. */
export function duration(defaultValue: string, min: string, max = '24h') {
  const minMs = parseDuration(min) ?? 0;
  const maxMs = parseDuration(max) ?? Number.MAX_SAFE_INTEGER;
  return z
    .string()
    .default(defaultValue)
    .transform((text, ctx) => {
      const ms = parseDuration(text);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `must be a duration such as 500ms, 10s, 5m or 1h (got "${text}")` });
        return z.NEVER;
      }
      if (ms < minMs || ms > maxMs) {
        ctx.addIssue({ code: 'custom', message: `must be between ${min} and ${max} (got "${text}")` });
        return z.NEVER;
      }
      return ms;
    });
}

/** A whole number within bounds. */
export function integer(defaultValue: number, min: number, max: number) {
  return z
    .string()
    .default(String(defaultValue))
    .transform((text, ctx) => {
      const n = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
      if (!Number.isSafeInteger(n) || n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `must be a whole number from ${min} to ${max} (got "${text}")` });
        return z.NEVER;
      }
      return n;
    });
}

/** `true`/`false` (also 1/0, yes/no, on/off). Anything else is an error, never silently true. */
export function flag(defaultValue: boolean) {
  return z
    .string()
    .default(String(defaultValue))
    .transform((text, ctx) => {
      const t = text.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(t)) return true;
      if (['false', '0', 'no', 'off'].includes(t)) return false;
      ctx.addIssue({ code: 'custom', message: `must be true or false (got "${text}")` });
      return z.NEVER;
    });
}

/** A URL whose scheme is one of `protocols` (without the colon). */
export function url(protocols: readonly string[], defaultValue?: string) {
  const base = defaultValue === undefined ? required() : z.string().default(defaultValue);
  return base.transform((text, ctx) => {
    let parsed: URL;
    try {
      parsed = new URL(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: `must be a URL such as ${protocols[0]}://host:port (got "${text}")` });
      return z.NEVER;
    }
    const scheme = parsed.protocol.replace(/:$/, '');
    if (!protocols.includes(scheme)) {
      ctx.addIssue({ code: 'custom', message: `must start with ${protocols.map((p) => `${p}://`).join(' or ')} (got "${text}")` });
      return z.NEVER;
    }
    return text;
  });
}

export function required() {
  return z.string({ required_error: 'is required', invalid_type_error: 'is required' });
}

export function oneOf<const T extends readonly [string, ...string[]]>(values: T, defaultValue: T[number]) {
  return z
    .enum(values as unknown as [T[number], ...T[number][]], { errorMap: () => ({ message: `must be one of ${values.join(', ')}` }) })
    .default(defaultValue as never);
}

export const logLevel = () => oneOf(LOG_LEVELS, 'info');

/** HTTP_ALLOWED_HOSTS: host names an HTTP server answers besides IP literals, localhost and the machine's (DNS rebinding). */
export function allowedHosts() {
  return z
    .string()
    .default('')
    .transform((text, ctx) => {
      const { hosts, invalid } = parseAllowedHosts(text);
      if (invalid.length > 0) {
        ctx.addIssue({ code: 'custom', message: `must be host names separated by commas, such as nas.lan,.example.org or * (got "${invalid.join('", "')}")` });
        return z.NEVER;
      }
      return hosts;
    });
}

/** A rule across several variables: returns `VARIABLE: problem` lines. */
export type CrossCheck<T> = (config: T) => readonly string[];

/** Parses the variables a schema names out of `env`; all problems at once, one line each. */
export function parseConfig<S extends z.AnyZodObject>(schema: S, env: Env, crossCheck?: CrossCheck<z.output<S>>): ConfigResult<z.output<S>> {
  const input: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') input[key] = value;
  }
  const result = schema.safeParse(input);
  if (result.success) {
    const errors = crossCheck?.(result.data) ?? [];
    return errors.length === 0 ? { ok: true, config: Object.freeze(result.data) } : { ok: false, errors };
  }
  const errors = result.error.issues.map((issue) => {
    const name = issue.path.length > 0 ? issue.path.map(String).join('.') : 'config';
    return `${name}: ${issue.message}`;
  });
  return { ok: false, errors };
}
