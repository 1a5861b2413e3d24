/**
 * Mosquitto password files, written without mosquitto_passwd: one `user:$7$<iterations>$<salt>$<hash>`
 * line per login, PBKDF2-SHA512 with a 12-byte salt, the only salt size Mosquitto 2.0 accepts
 * (Mosquitto 2.1's tool writes 64-byte salts that 2.0 refuses).
 */
import { pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, chown, readFile, rename, writeFile } from 'node:fs/promises';

const ITERATIONS = 1000;
const SALT_BYTES = 12;

export function hashLine(user: string, password: string, salt: Buffer = randomBytes(SALT_BYTES)): string {
  const hash = pbkdf2Sync(password, salt, ITERATIONS, 64, 'sha512');
  return `${user}:$7$${ITERATIONS}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** A password of 24 characters from [A-Za-z0-9] (~142 bits), safe in .env files and shells. */
export function randomPassword(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let out = '';
  while (out.length < 24) {
    for (const byte of randomBytes(32)) {
      if (byte < 248 && out.length < 24) out += alphabet[byte % 62];
    }
  }
  return out;
}

/** The logins in a password file, in order (an absent file has none). */
export async function readPasswd(path: string): Promise<Map<string, string>> {
  let text = '';
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const entries = new Map<string, string>();
  for (const line of text.split('\n')) {
    const at = line.indexOf(':');
    if (at > 0) entries.set(line.slice(0, at), line);
  }
  return entries;
}

export interface WriteOptions {
  /** `uid:gid` to own the file (needs root), e.g. Mosquitto's 1883:1883 in its container. */
  readonly owner?: string | undefined;
}

/** Replaces the file atomically; readable by its owner and group only when an owner is given. */
export async function writePasswd(path: string, entries: ReadonlyMap<string, string>, options: WriteOptions = {}): Promise<void> {
  await writeBrokerFile(path, [...entries.values()].map((l) => `${l}\n`).join(''), options);
}

/** A file for Mosquitto (password file, acl_file), replaced atomically, with the same ownership as writePasswd. */
export async function writeBrokerFile(path: string, text: string, options: WriteOptions = {}): Promise<void> {
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, text, { mode: 0o600 });
  if (options.owner) {
    const [uid, gid] = options.owner.split(':').map(Number);
    await chown(temp, uid ?? 0, gid ?? uid ?? 0);
    await chmod(temp, 0o640);
  } else {
    // Without an owner to hand it to, Mosquitto (another user in its container) must be able to read it.
    await chmod(temp, 0o644);
  }
  await rename(temp, path);
}

/** Checks a password against a `user:$7$…` line (Mosquitto 2.0 PBKDF2-SHA512), in constant time. */
export function verifyPassword(line: string, password: string): boolean {
  const [, iterations, salt, hash] = /^[^:]+:\$7\$(\d+)\$([^$]+)\$([^$]+)$/.exec(line.trim()) ?? [];
  if (!iterations || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const actual = pbkdf2Sync(password, Buffer.from(salt, 'base64'), Number(iterations), expected.length, 'sha512');
  return expected.length > 0 && timingSafeEqual(actual, expected);
}
