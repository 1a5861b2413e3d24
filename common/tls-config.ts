/**
 * TLS as configuration: variables that name PEM files, read and checked when the config is loaded,
 * so that a missing file, a file that is not PEM, or a key that is not the certificate's is a config
 * error naming the variable at start, not a failed handshake later. Certificate verification is
 * always on: there is deliberately no variable to turn it off.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from './config.js';

/** PEM contents as node:tls and MQTT.js take them: CAs to trust, a certificate chain and its key. */
export interface TlsFiles {
  readonly ca?: Buffer | undefined;
  readonly cert?: Buffer | undefined;
  readonly key?: Buffer | undefined;
}

export interface CertificateFile {
  readonly path: string;
  readonly pem: Buffer;
  /** In file order; a chain starts with its leaf. */
  readonly certificates: readonly X509Certificate[];
}

export interface PrivateKeyFile {
  readonly path: string;
  readonly pem: Buffer;
  readonly key: KeyObject;
}

const READ_ERRORS: Record<string, string> = { ENOENT: 'no such file', EACCES: 'permission denied', EISDIR: 'is a directory' };

/** The file's bytes, or why it cannot be read. */
function read(path: string): Buffer | string {
  try {
    return readFileSync(path);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    return `cannot read ${path}: ${(e.code && READ_ERRORS[e.code]) ?? e.message}`;
  }
}

const CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;
const PRIVATE_KEY = /-----BEGIN ((?:RSA |EC |ENCRYPTED )?PRIVATE KEY)-----/;

/** A PEM file of one or more certificates (a CA bundle, or a certificate chain, leaf first). */
export function certificateFile() {
  return z.string().transform((path, ctx): CertificateFile => {
    const pem = read(path);
    if (typeof pem === 'string') {
      ctx.addIssue({ code: 'custom', message: pem });
      return z.NEVER;
    }
    const blocks = pem.toString('latin1').match(CERTIFICATE) ?? [];
    if (blocks.length === 0) {
      ctx.addIssue({ code: 'custom', message: `${path} is not a PEM certificate file (no "-----BEGIN CERTIFICATE-----")` });
      return z.NEVER;
    }
    const certificates: X509Certificate[] = [];
    for (const [i, block] of blocks.entries()) {
      try {
        certificates.push(new X509Certificate(block));
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: `${path}: certificate ${i + 1} cannot be read (${(error as Error).message})` });
        return z.NEVER;
      }
    }
    return { path, pem, certificates };
  });
}

/** A PEM file holding an unencrypted private key (PKCS#8, RSA or EC). */
export function privateKeyFile() {
  return z.string().transform((path, ctx): PrivateKeyFile => {
    const pem = read(path);
    if (typeof pem === 'string') {
      ctx.addIssue({ code: 'custom', message: pem });
      return z.NEVER;
    }
    const text = pem.toString('latin1');
    const kind = PRIVATE_KEY.exec(text)?.[1];
    if (kind === undefined) {
      ctx.addIssue({ code: 'custom', message: `${path} is not a PEM private key file (no "-----BEGIN PRIVATE KEY-----")` });
      return z.NEVER;
    }
    if (kind.startsWith('ENCRYPTED') || /^Proc-Type: 4,ENCRYPTED/m.test(text)) {
      ctx.addIssue({ code: 'custom', message: `${path} holds an encrypted key; give an unencrypted one and protect the file by its permissions` });
      return z.NEVER;
    }
    try {
      return { path, pem, key: createPrivateKey(pem) };
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: `${path}: the private key cannot be read (${(error as Error).message})` });
      return z.NEVER;
    }
  });
}

/** A certificate and its key: both or neither, and the key must be the certificate's. */
export function keyPairProblems(certVar: string, keyVar: string, cert: CertificateFile | undefined, key: PrivateKeyFile | undefined): string[] {
  if (cert && !key) return [`${keyVar}: is required when ${certVar} is set`];
  if (key && !cert) return [`${certVar}: is required when ${keyVar} is set`];
  if (cert && key && !cert.certificates[0]?.checkPrivateKey(key.key)) return [`${keyVar}: ${key.path} is not the key of the certificate in ${certVar}`];
  return [];
}

/** The TLS variables of a broker client (agent and bridge), spread into each service's schema. */
export const mqttTlsFields = {
  /** CAs to trust for the broker's certificate, instead of the system's. */
  MQTT_CA_FILE: certificateFile().optional(),
  /** A client certificate (chain), for brokers that require one; with MQTT_KEY_FILE. */
  MQTT_CERT_FILE: certificateFile().optional(),
  MQTT_KEY_FILE: privateKeyFile().optional(),
};

export const MQTT_TLS_VARIABLES = Object.keys(mqttTlsFields) as (keyof typeof mqttTlsFields)[];

interface MqttTlsEnv {
  readonly MQTT_URL: string;
  readonly MQTT_CA_FILE?: CertificateFile | undefined;
  readonly MQTT_CERT_FILE?: CertificateFile | undefined;
  readonly MQTT_KEY_FILE?: PrivateKeyFile | undefined;
}

/** TLS is chosen by the URL: mqtts:// or wss://. */
function isTlsUrl(url: string): boolean {
  return /^(mqtts|wss):/i.test(url);
}

export function mqttTlsProblems(c: MqttTlsEnv): string[] {
  if (!isTlsUrl(c.MQTT_URL)) {
    const scheme = c.MQTT_URL.slice(0, c.MQTT_URL.indexOf(':'));
    return MQTT_TLS_VARIABLES.filter((k) => c[k] !== undefined).map(
      (k) => `${k}: applies only to a TLS broker (MQTT_URL mqtts:// or wss://), and MQTT_URL is ${scheme}://`,
    );
  }
  return keyPairProblems('MQTT_CERT_FILE', 'MQTT_KEY_FILE', c.MQTT_CERT_FILE, c.MQTT_KEY_FILE);
}

/** The `tls` member of MqttSettings, or nothing when no file is configured (the system's CAs). */
export function mqttTls(c: MqttTlsEnv): { readonly tls?: TlsFiles } {
  if (c.MQTT_CA_FILE === undefined && c.MQTT_CERT_FILE === undefined) return {};
  return { tls: { ca: c.MQTT_CA_FILE?.pem, cert: c.MQTT_CERT_FILE?.pem, key: c.MQTT_KEY_FILE?.pem } };
}
