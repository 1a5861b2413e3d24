/** The one place pino is imported. Components get child loggers passed in; nothing is global. */
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  readonly level: LogLevel;
  /** Name of the service (`agent`, `bridge`), set on every line. */
  readonly name: string;
  /** File descriptor to write to: 1 (stdout, default) or 2 (stderr, when stdout carries data). */
  readonly fd?: 1 | 2;
  readonly destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const destination = options.destination ?? pino.destination({ fd: options.fd ?? 1, sync: true });
  return pino(
    {
      name: options.name,
      level: options.level,
      base: { pid: process.pid },
      redact: { paths: ['password', '*.password', 'token', '*.token'], censor: '[redacted]' },
    },
    destination,
  );
}
