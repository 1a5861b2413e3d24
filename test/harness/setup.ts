/** Set up in every test file (vitest setupFiles): what one test leaves on a shared server is cleared before the next. */
import { afterEach } from 'vitest';
import { forgetBridgeSessions } from './sessions.js';

afterEach(forgetBridgeSessions);
