/**
 * The Debian mirror this machine's apt uses, read from /etc/apt/sources.list and sources.list.d/
 * (one-line and deb822 formats), so that debootstrap and the images' apt-get fetch from the same
 * place as the machine does (a CI machine may have no other way out).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface DebianSources {
  /** Serves `<suite>` and `<suite>-updates`. */
  readonly mirror: string;
  /** Serves `<suite>-security`, when this machine uses it. */
  readonly security?: string;
}

interface Entry {
  readonly uris: string[];
  readonly suites: string[];
}

function oneLine(text: string): Entry[] {
  return text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l.startsWith('deb '))
    .map((l) => l.replace(/\[[^\]]*\]\s*/, '').split(/\s+/))
    .map(([, uri, suite]) => ({ uris: uri ? [uri] : [], suites: suite ? [suite] : [] }));
}

function deb822(text: string): Entry[] {
  return text
    .split(/\n\s*\n/)
    .map((stanza) => {
      const field = (name: string): string[] => new RegExp(`^${name}:\\s*(.*)$`, 'mi').exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
      return { types: field('Types'), enabled: field('Enabled')[0] ?? 'yes', uris: field('URIs'), suites: field('Suites') };
    })
    .filter((s) => s.types.includes('deb') && s.enabled !== 'no');
}

function entries(): Entry[] {
  const list = '/etc/apt/sources.list';
  const dir = '/etc/apt/sources.list.d';
  const found = existsSync(list) ? oneLine(readFileSync(list, 'utf8')) : [];
  for (const file of existsSync(dir) ? readdirSync(dir).sort() : []) {
    if (file.endsWith('.list')) found.push(...oneLine(readFileSync(join(dir, file), 'utf8')));
    if (file.endsWith('.sources')) found.push(...deb822(readFileSync(join(dir, file), 'utf8')));
  }
  return found;
}

/** Where this machine gets `suite` and its security updates; Debian's own addresses if it does not say. */
export function debianSources(suite: string): DebianSources {
  const all = entries();
  const serving = (s: string): string | undefined =>
    all
      .find((e) => e.suites.includes(s))
      ?.uris.find((u) => /^https?:\/\//.test(u))
      ?.replace(/\/+$/, '');
  const security = serving(`${suite}-security`);
  return { mirror: serving(suite) ?? 'http://deb.debian.org/debian', ...(security ? { security } : {}) };
}

/** The image's /etc/apt/sources.list.d/debian.sources for these sources (as Debian's own images have it). */
export function sourcesFile(suite: string, sources: DebianSources): string {
  const stanza = (uri: string, suites: string): string =>
    `Types: deb\nURIs: ${uri}\nSuites: ${suites}\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`;
  return [stanza(sources.mirror, `${suite} ${suite}-updates`), ...(sources.security ? [stanza(sources.security, `${suite}-security`)] : [])].join('\n');
}
