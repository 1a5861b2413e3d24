/** What the subcommands share: config error output, parsing flags, stopping on signals. */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { parseArgs, parseEnv, type ParseArgsConfig } from 'node:util';
import type { ConfigResult } from '../common/config.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Prints every configuration problem on its own line; returns the config or undefined. */
export function configOrReport<T>(command: string, result: ConfigResult<T>): T | undefined {
  if (result.ok) return result.config;
  process.stderr.write(`hostpulse ${command}: invalid configuration\n${result.errors.map((e) => `${e}\n`).join('')}`);
  return undefined;
}

export type Flags = ReturnType<typeof parseArgs>['values'];

/** Parses flags; prints the problem and returns undefined on a bad flag. */
export function parseFlags(command: string, args: readonly string[], options: ParseArgsConfig['options']): Flags | undefined {
  return parseCommandLine(command, args, options, false)?.values;
}

/** Parses flags and positional arguments; prints the problem and returns undefined when they are bad. */
export function parseCommandLine(
  command: string,
  args: readonly string[],
  options: ParseArgsConfig['options'],
  allowPositionals = true,
): { values: Flags; positionals: string[] } | undefined {
  try {
    return parseArgs({ args: [...args], options: { help: { type: 'boolean', short: 'h' }, ...options }, strict: true, allowPositionals });
  } catch (error) {
    process.stderr.write(`hostpulse ${command}: ${(error as Error).message}\nSee "hostpulse ${command} --help".\n`);
    return undefined;
  }
}

/** Resolves with the first SIGTERM or SIGINT; a second one exits at once. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const handler = (signal: NodeJS.Signals): void => {
      process.off('SIGTERM', handler);
      process.off('SIGINT', handler);
      process.once('SIGTERM', () => process.exit(130));
      process.once('SIGINT', () => process.exit(130));
      resolve(signal);
    };
    process.on('SIGTERM', handler);
    process.on('SIGINT', handler);
  });
}

/**
 * The environment, with the variables of an env file (KEY=value lines, as systemd and Docker read
 * them) under it: a variable set in the real environment wins over the file.
 */
export function environment(envFile: unknown): NodeJS.ProcessEnv | undefined {
  if (typeof envFile !== 'string') return process.env;
  let text: string;
  try {
    text = readConfigFile(envFile);
  } catch (error) {
    process.stderr.write(`hostpulse: cannot read --config ${envFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}\n`);
    return undefined;
  }
  return { ...parseEnv(text), ...process.env };
}

/** An env file is a few hundred bytes; this much is room for any, and bounds what a wrong path costs. */
export const MAX_CONFIG_BYTES = 64 * 1024;

/** A regular file of at most MAX_CONFIG_BYTES, read whole: not /dev/zero, a FIFO or a disk image read until memory runs out. */
function readConfigFile(path: string): string {
  const fd = openSync(path, 'r');
  try {
    if (!fstatSync(fd).isFile()) throw new Error('not a regular file');
    // Read one byte past the bound rather than trust the size (a file may grow while read).
    const buffer = Buffer.alloc(MAX_CONFIG_BYTES + 1);
    let length = 0;
    for (let n = 1; n > 0 && length < buffer.length; length += n) n = readSync(fd, buffer, length, buffer.length - length, null);
    if (length > MAX_CONFIG_BYTES) throw new Error(`larger than ${MAX_CONFIG_BYTES / 1024} KiB: not an env file`);
    return buffer.toString('utf8', 0, length);
  } finally {
    closeSync(fd);
  }
}
