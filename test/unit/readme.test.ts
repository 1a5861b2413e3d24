/** The README is part of the product: its tables are checked against the code so they cannot drift. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { agentSchema } from '../../agent/config.js';
import { bridgeSchema } from '../../bridge/config.js';
import { metricTableMarkdown } from '../../protocol/catalog-doc.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const section = (heading: string): string => {
  const start = readme.indexOf(`\n${heading}\n`);
  expect(start, heading).toBeGreaterThan(0);
  const rest = readme.slice(start + heading.length + 2);
  const next = rest.search(/\n#{2,3} /);
  return next < 0 ? rest : rest.slice(0, next);
};

describe('README', () => {
  it('lists every metric of the catalog, as `hostpulse metrics --markdown` prints it', () => {
    const table = /<!-- metrics:start -->\n([\s\S]*?)\n<!-- metrics:end -->/.exec(readme)?.[1];
    expect(table).toBe(metricTableMarkdown());
  });

  it.each([
    ['### Agent', agentSchema.shape],
    ['### Bridge', bridgeSchema.shape],
  ])('documents every variable of the %s schema, and no other', (heading, shape) => {
    const documented = [...section(heading).matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(Object.keys(shape).sort());
  });

  it('gives the test command that CI runs', () => {
    expect(section('## Development')).toContain('```sh\nnpm test\n```');
    const ci = readFileSync(new URL('../../.ci/run', import.meta.url), 'utf8');
    expect(ci).toMatch(/^npm test$/m);
  });
});
