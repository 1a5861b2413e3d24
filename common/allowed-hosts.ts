/**
 * Which `Host:` (and `Origin:`) an HTTP server answers: the defence against DNS rebinding, where a
 * web page on the attacker's name has that name re-resolved to this machine and reads the answers
 * as its own origin. Its requests carry the attacker's name, so a server that answers only names
 * it knows is out of reach. Allowed, as Vite and webpack-dev-server allow by default:
 * - any IP literal (`192.168.1.5:8080`, `[::1]`): rebinding needs a DNS name, and a page served
 *   from an IP address is that address's own origin;
 * - `localhost` and names under `.localhost` (they resolve to loopback, RFC 6761);
 * - the machine's host name, the address the server is bound to, and the names configured
 *   (HTTP_ALLOWED_HOSTS): `nas.lan`, `.example.org` for it and every name under it, `*` for any.
 */
import { isIP } from 'node:net';
import { hostname } from 'node:os';

/** `.`-prefixed: the name and every name under it; `*`: any Host. */
const ENTRY = /^(\*|\.?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*)$/;

/** HTTP_ALLOWED_HOSTS, comma-separated: the entries, or the ones that are not host names. */
export function parseAllowedHosts(text: string): { readonly hosts: string[]; readonly invalid: string[] } {
  const entries = text
    .split(',')
    .map((e) => e.trim().toLowerCase().replace(/\.$/, ''))
    .filter((e) => e !== '');
  return { hosts: entries.filter((e) => ENTRY.test(e)), invalid: entries.filter((e) => !ENTRY.test(e)) };
}

/** The name of a Host header (or of an Origin's authority), port and brackets removed, lower case. */
function nameOf(authority: string): string {
  const a = authority.trim().toLowerCase();
  if (a.startsWith('[')) return a.slice(1, a.indexOf(']') < 0 ? undefined : a.indexOf(']'));
  const colon = a.lastIndexOf(':');
  const name = colon >= 0 && a.indexOf(':') === colon ? a.slice(0, colon) : a;
  return name.replace(/\.$/, '');
}

export class AllowedHosts {
  private readonly names: Set<string>;
  private readonly suffixes: string[];
  private readonly any: boolean;

  /** `configured`: entries as parseAllowedHosts returns them; `bound`: the address the server listens on. */
  constructor(configured: readonly string[], bound: string) {
    const own = [hostname(), bound].map((n) => nameOf(n)).filter((n) => n !== '' && isIP(n) === 0);
    this.any = configured.includes('*');
    this.names = new Set([...configured.filter((e) => !e.startsWith('.')), ...own, 'localhost']);
    this.suffixes = [...configured.filter((e) => e.startsWith('.')), '.localhost'];
  }

  /** Whether a request with this Host header is answered (none at all: HTTP/1.0, not a browser). */
  host(header: string | undefined): boolean {
    if (header === undefined || this.any) return true;
    return this.name(nameOf(header));
  }

  /** Whether a request with this Origin header is answered (none: not a cross-origin browser request). */
  origin(header: string | undefined): boolean {
    if (header === undefined || this.any) return true;
    let url: URL;
    try {
      url = new URL(header);
    } catch {
      return false; // "null" (a sandboxed frame, a file) and garbage
    }
    return (url.protocol === 'http:' || url.protocol === 'https:') && this.name(nameOf(url.host));
  }

  private name(name: string): boolean {
    if (isIP(name) !== 0) return true;
    if (this.names.has(name)) return true;
    return this.suffixes.some((s) => name === s.slice(1) || name.endsWith(s));
  }
}
