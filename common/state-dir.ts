/** Where a service keeps its state (durable queues) when no directory is configured. */
import { homedir } from 'node:os';
import { join, win32 } from 'node:path';
import type { Env } from './config.js';

/**
 * `<state>/hostpulse/<name>`, where `<state>` is the directory systemd gives the service
 * (STATE_DIRECTORY, from StateDirectory=), else the platform's per-user state folder:
 * XDG_STATE_HOME or ~/.local/state (Linux), ~/Library/Application Support (macOS),
 * %LOCALAPPDATA% (Windows).
 */
export function defaultStateDir(env: Env, name: string, platform: NodeJS.Platform = process.platform): string {
  const systemd = env['STATE_DIRECTORY']?.split(':')[0];
  if (systemd) return join(systemd, name);
  const home = env['HOME'] || env['USERPROFILE'] || homedir();
  if (platform === 'win32') return win32.join(env['LOCALAPPDATA'] || win32.join(home, 'AppData', 'Local'), 'hostpulse', name);
  if (platform === 'darwin') return join(home, 'Library', 'Application Support', 'hostpulse', name);
  return join(env['XDG_STATE_HOME'] || join(home, '.local', 'state'), 'hostpulse', name);
}
