/**
 * The README and docs/ are part of the product: their tables are checked against the code so they
 * cannot drift, and every relative link (file and heading) resolves.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { agentSchema } from '../../agent/config.js';
import { bridgeSchema } from '../../bridge/config.js';
import { brokerSchema } from '../../broker/config.js';
import { metricTableMarkdown } from '../../protocol/catalog-doc.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const read = (file: string): string => readFileSync(join(ROOT, file), 'utf8');

/** The text under a heading, up to the next heading of any level from 2 on. */
function section(file: string, heading: string): string {
  const text = read(file);
  const start = text.indexOf(`\n${heading}\n`);
  expect(start, `${file}: ${heading}`).toBeGreaterThan(0);
  const rest = text.slice(start + heading.length + 2);
  const next = rest.search(/\n#{2,3} /);
  return next < 0 ? rest : rest.slice(0, next);
}

/** The variables a configuration table documents: each name in backticks in a row's first cell (`A` / `B` rows too). */
const documented = (text: string): string[] =>
  [...text.matchAll(/^\| (`[A-Z0-9_]+`(?: \/ `[A-Z0-9_]+`)*) \|/gm)]
    .flatMap((m) => [...(m[1] as string).matchAll(/`([A-Z0-9_]+)`/g)].map((n) => n[1] as string))
    .sort();

/** The Markdown pages: the README, docs/ and bench/README.md. */
const PAGES = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
  'bench/README.md',
];

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
const slug = (heading: string): string =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}_\- ]/gu, '')
    .replace(/ /g, '-');

function anchors(file: string): Set<string> {
  const out = new Set<string>();
  let fence = false;
  for (const line of read(file).split('\n')) {
    if (line.startsWith('```')) fence = !fence;
    const m = /^#{1,6} (.*)$/.exec(line);
    if (m && !fence) out.add(slug(m[1] as string));
  }
  return out;
}

describe('README and docs', () => {
  it('list every metric of the catalog, as `hostpulse metrics --markdown` prints it', () => {
    const table = /<!-- metrics:start -->\n([\s\S]*?)\n<!-- metrics:end -->/.exec(read('docs/protocol.md'))?.[1];
    expect(table).toBe(metricTableMarkdown());
  });

  it.each([
    ['agent', [['docs/configuration.md', '## Agent']], Object.keys(agentSchema.shape)],
    ['bridge', [['docs/configuration.md', '## Bridge']], Object.keys(bridgeSchema.shape)],
    [
      "up's broker",
      [
        ['docs/configuration.md', "## `hostpulse up`'s broker"],
        ['docs/tls.md', '## `hostpulse up` with TLS'],
      ],
      Object.keys(brokerSchema.shape),
    ],
  ] as const)('document every variable of the %s schema, and no other', (_, sections, variables) => {
    expect(sections.flatMap(([file, heading]) => documented(section(file, heading))).sort()).toEqual([...variables].sort());
  });

  it('give the test command that CI runs', () => {
    expect(section('README.md', '## Development')).toContain('```sh\nnpm test\n```');
    expect(read('.ci/run')).toMatch(/^npm test$/m);
  });

  it('keep the README short: what it is, the quick starts, the test command and links (at most ~200 lines)', () => {
    expect(read('README.md').split('\n').length).toBeLessThanOrEqual(210);
  });

  it.each(PAGES)('%s: every relative link leads to a file that exists, and to a heading in it', (page) => {
    const broken: string[] = [];
    const text = read(page).replace(/```[\s\S]*?```/g, '');
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target as string)) continue;
      const [path, anchor] = (target as string).split('#') as [string, string | undefined];
      const file = path === '' ? page : normalize(join(dirname(page), path));
      if (!existsSync(join(ROOT, file))) broken.push(`${target}: no file ${file}`);
      else if (anchor !== undefined && file.endsWith('.md') && !anchors(file).has(anchor)) broken.push(`${target}: no heading #${anchor} in ${file}`);
    }
    expect(broken).toEqual([]);
  });
});
