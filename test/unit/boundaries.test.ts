/**
 * The source tree's boundaries, read from the import statements: which folder may use which, and
 * the one file each third-party package is imported in (so that replacing one touches one file).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const FOLDERS = ['protocol', 'common', 'broker', 'agent', 'bridge', 'cli'] as const;
type Folder = (typeof FOLDERS)[number];

/** What each folder may import besides itself. `cli` composes the services; the services never use each other. */
const MAY_IMPORT: Record<Folder, readonly Folder[]> = {
  protocol: [],
  common: ['protocol'],
  broker: ['protocol', 'common'],
  agent: ['protocol', 'common'],
  bridge: ['protocol', 'common'],
  cli: ['protocol', 'common', 'broker', 'agent', 'bridge'],
};

/** The one file each runtime dependency is imported in. */
const PACKAGE_HOME: Record<string, string> = {
  mqtt: 'common/mqtt.ts',
  aedes: 'broker/server.ts',
  ws: 'broker/server.ts',
  systeminformation: 'agent/probe/system.ts',
  '@influxdata/influxdb-client': 'bridge/sinks/influx-v2.ts',
  pino: 'common/logger.ts',
  zod: 'common/config.ts',
};

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Static imports and re-exports, `import('…')` and `typeof import('…')`. */
function specifiers(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)'([^']+)'/gm)].map((m) => m[1] as string);
}

const packageOf = (spec: string): string => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] as string));
const isBuiltin = (spec: string): boolean => spec.startsWith('node:') || builtinModules.includes(spec);

const files = FOLDERS.flatMap((f) => sources(f));

describe('source boundaries', () => {
  it('each folder imports only the folders below it: the agent, the bridge and the broker never each other', () => {
    const crossings: string[] = [];
    for (const file of files) {
      const from = file.split('/')[0] as Folder;
      for (const spec of specifiers(file).filter((s) => s.startsWith('.'))) {
        const to = relative(ROOT, resolve(ROOT, dirname(file), spec)).split('/')[0] as Folder;
        if (to !== from && !MAY_IMPORT[from].includes(to)) crossings.push(`${file} imports ${spec}`);
      }
    }
    expect(crossings).toEqual([]);
  });

  it('each third-party package is imported in one file, and only the declared ones are', () => {
    const found = new Map<string, Set<string>>();
    for (const file of files) {
      for (const spec of specifiers(file).filter((s) => !s.startsWith('.') && !isBuiltin(s))) {
        const pkg = packageOf(spec);
        found.set(pkg, (found.get(pkg) ?? new Set()).add(file));
      }
    }
    const where = Object.fromEntries([...found].map(([pkg, in_]) => [pkg, [...in_].sort()]));
    expect(where).toEqual(Object.fromEntries(Object.entries(PACKAGE_HOME).map(([pkg, file]) => [pkg, [file]])));
  });

  it('the scan sees the imports it checks (a file of each folder, and a dynamic import)', () => {
    expect(specifiers('agent/probe/system.ts')).toContain('systeminformation');
    expect(specifiers('cli/up.ts')).toContain('../broker/server.js');
    for (const folder of FOLDERS) expect(files.some((f) => f.startsWith(`${folder}/`))).toBe(true);
  });
});
