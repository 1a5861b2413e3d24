/**
 * Test certificates made with the `openssl` CLI (OpenSSL 3.0) in a temp dir: a CA, a server
 * certificate for 127.0.0.1 and localhost, the same server key with a certificate that expired in
 * 2020, a client certificate, and an unrelated second CA with a client certificate of its own.
 *
 * `openssl x509 -req` cannot set a start date in 3.0, so leaves are signed with `openssl ca`, whose
 * `-startdate`/`-enddate` can put a certificate in the past. EC P-256 keys: fast to make.
 * Everything is world-readable, for a Mosquitto that drops from root to its own user.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from './process.js';

const run = promisify(execFile);

export interface KeyPair {
  readonly cert: string;
  readonly key: string;
}

export interface TestCerts {
  readonly dir: string;
  /** The CA that signed `server`, `expired` and `client`. */
  readonly ca: string;
  /** For 127.0.0.1 and localhost (subjectAltName IP and DNS), valid now. */
  readonly server: KeyPair;
  /** The same names, valid only on 1 January 2020. */
  readonly expired: KeyPair;
  /** A client certificate (CN alice), for brokers that require one. */
  readonly client: KeyPair;
  /** A second CA, unrelated to the first, and a client certificate it signed. */
  readonly otherCa: string;
  readonly otherClient: KeyPair;
  remove(): Promise<void>;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function openssl(dir: string, args: readonly string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd: dir });
  } catch (error) {
    throw new Error(`openssl ${args.join(' ')} failed: ${(error as { stderr?: string }).stderr ?? String(error)}`, { cause: error });
  }
}

/** A self-signed CA and a minimal `openssl ca` configuration around it. */
async function makeCa(
  dir: string,
  name: string,
): Promise<{ cert: string; sign: (csr: string, out: string, profile: 'server' | 'client', dates: readonly string[]) => Promise<void> }> {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  await openssl(dir, [
    'req',
    '-x509',
    ...EC,
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '2',
    '-subj',
    `/CN=hostpulse test ${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const state = join(dir, `${name}-db`);
  await mkdir(state);
  await writeFile(join(state, 'index.txt'), '');
  await writeFile(join(state, 'serial'), '1000\n');
  const conf = join(dir, `${name}.cnf`);
  await writeFile(
    conf,
    `[ca]
default_ca = ca_section
[ca_section]
database = ${state}/index.txt
serial = ${state}/serial
new_certs_dir = ${state}
default_md = sha256
policy = policy_any
unique_subject = no
[policy_any]
commonName = supplied
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
`,
  );
  return {
    cert,
    sign: (csr, out, profile, dates) =>
      openssl(dir, ['ca', '-batch', '-notext', '-config', conf, '-cert', cert, '-keyfile', key, '-in', csr, '-out', out, '-extensions', profile, ...dates]),
  };
}

async function request(dir: string, name: string, subject: string): Promise<{ key: string; csr: string }> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  await openssl(dir, ['req', '-new', ...EC, '-keyout', key, '-out', csr, '-subj', subject]);
  return { key, csr };
}

export async function makeTestCerts(): Promise<TestCerts> {
  const dir = await tempDir('certs');
  const [ca, other] = await Promise.all([makeCa(dir, 'ca'), makeCa(dir, 'other-ca')]);
  const [server, client, otherClient] = await Promise.all([
    request(dir, 'server', '/CN=localhost'),
    request(dir, 'client', '/CN=alice'),
    request(dir, 'other-client', '/CN=alice'),
  ]);
  const certs: TestCerts = {
    dir,
    ca: ca.cert,
    server: { cert: join(dir, 'server.pem'), key: server.key },
    expired: { cert: join(dir, 'expired.pem'), key: server.key },
    client: { cert: join(dir, 'client.pem'), key: client.key },
    otherCa: other.cert,
    otherClient: { cert: join(dir, 'other-client.pem'), key: otherClient.key },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
  // One `openssl ca` at a time per CA: each updates its database.
  await ca.sign(server.csr, certs.server.cert, 'server', ['-days', '2']);
  await ca.sign(server.csr, certs.expired.cert, 'server', ['-startdate', '20200101000000Z', '-enddate', '20200102000000Z']);
  await ca.sign(client.csr, certs.client.cert, 'client', ['-days', '2']);
  await other.sign(otherClient.csr, certs.otherClient.cert, 'client', ['-days', '2']);
  await chmod(dir, 0o755);
  for (const file of await readdir(dir)) if (/\.(pem|key)$/.test(file)) await chmod(join(dir, file), 0o644);
  return certs;
}
