/** A real pino logger whose lines the test can read. */
import { createLogger, type Logger } from '../../common/logger.js';

export interface CapturedLogger {
  readonly logger: Logger;
  readonly lines: { level: number; msg: string; [key: string]: unknown }[];
}

export function captureLogger(name = 'test'): CapturedLogger {
  const lines: CapturedLogger['lines'] = [];
  const logger = createLogger({
    name,
    level: 'debug',
    destination: { write: (s: string) => void lines.push(JSON.parse(s) as CapturedLogger['lines'][number]) },
  });
  return { logger, lines };
}
