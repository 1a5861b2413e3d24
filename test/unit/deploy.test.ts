/** The files that run the agent on PCs: a systemd unit, a launchd daemon, a Windows scheduled task, and --config. */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { AGENT_NODE_OPTIONS } from '../../cli/agent-runtime.js';
import { ROOT, execCli } from '../harness/cli.js';
import { tempDir } from '../harness/process.js';

it('ships a systemd unit that systemd-analyze accepts without a warning', async () => {
  const output = await new Promise<string>((resolve) =>
    execFile('systemd-analyze', ['verify', join(ROOT, 'deploy/systemd/hostpulse-agent.service')], (_e, stdout, stderr) => resolve(stdout + stderr)),
  );
  // verify exits 0 on unknown keys and only warns: any output is a problem in the unit.
  expect(output.split('\n').filter((l) => l.includes('hostpulse-agent.service'))).toEqual([]);
  const unit = readFileSync(join(ROOT, 'deploy/systemd/hostpulse-agent.service'), 'utf8');
  expect(unit).toMatch(new RegExp(`^ExecStart=/usr/bin/node ${AGENT_NODE_OPTIONS.join(' ')} /opt/hostpulse/dist/cli/main\.js agent$`, 'm'));
  expect(unit).toMatch(/^EnvironmentFile=\/etc\/hostpulse\/agent\.env$/m);
  expect(unit).toMatch(/^DynamicUser=yes$/m);
  // The agent's outbox must outlive restarts: systemd gives it a persistent, private state folder.
  expect(unit).toMatch(/^StateDirectory=hostpulse$/m);
});

it('starts the launchd daemon and the Windows task with the same settings file', () => {
  const plist = readFileSync(join(ROOT, 'deploy/macos/com.hostpulse.agent.plist'), 'utf8');
  expect(plist).toMatch(/<string>agent<\/string>\s*<string>--config<\/string>\s*<string>\/usr\/local\/etc\/hostpulse\/agent\.env<\/string>/);
  // Node's options for the agent (AGENT_NODE_OPTIONS) come before the script in every launcher.
  expect(plist).toMatch(
    new RegExp(
      `<string>/usr/local/bin/node</string>\\s*${AGENT_NODE_OPTIONS.map((o) => `<string>${o}</string>\\s*`).join('')}<string>/usr/local/hostpulse/dist/cli/main\\.js</string>`,
    ),
  );
  expect(plist.match(/<dict>/g)).toHaveLength(plist.match(/<\/dict>/g)?.length ?? -1);
  const ps1 = readFileSync(join(ROOT, 'deploy/windows/install-agent.ps1'), 'utf8');
  expect(ps1).toContain('agent --config');
  expect(ps1).toContain(`-Argument "${AGENT_NODE_OPTIONS.join(' ')} \`"$main\`" agent`);
  const compose = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');
  expect(compose).toContain(`entrypoint: ["node", ${AGENT_NODE_OPTIONS.map((o) => `"${o}"`).join(', ')}, "dist/cli/main.js"]`);
  expect(ps1).toContain('-Hidden');
  expect(ps1).toContain("-UserId 'SYSTEM'");
});

it('reads the settings `hostpulse enrol` prints through --config, the environment winning', async () => {
  const dir = await tempDir('envfile');
  const envFile = join(dir, 'agent.env');
  const enrol = await execCli(['enrol', 'file-pc', '--passwd', join(dir, 'passwd'), '--mqtt-url', 'mqtt://127.0.0.1:1']);
  expect(enrol.code).toBe(0);
  await writeFile(envFile, `${enrol.stdout}SAMPLE_INTERVAL=2s\n`);
  const printed = await execCli(['agent', '--print', '--config', envFile]);
  expect(printed.code, printed.stderr).toBe(0);
  expect(printed.stdout).toContain('"topic":"sensors/file-pc/cpu_usage"');
  const overridden = await execCli(['agent', '--print', '--config', envFile], { SENSORS_HOST: 'env-pc' });
  expect(overridden.stdout).toContain('"topic":"sensors/env-pc/cpu_usage"');
  const once = await execCli(['agent', '--once', '--config', envFile]);
  expect(once.stderr).toContain('could not connect to mqtt://127.0.0.1:1');
  const missing = await execCli(['agent', '--print', '--config', join(dir, 'nope.env')]);
  expect(missing).toMatchObject({ code: 2, stderr: expect.stringContaining('cannot read --config') });
});

it('refuses a --config that is not an env file at once, in one line, instead of reading it until memory runs out', async () => {
  const dir = await tempDir('envfile-bad');
  const big = join(dir, 'big.env');
  await writeFile(big, `A=${'x'.repeat(70 * 1024)}\n`);
  for (const [path, why] of [
    ['/dev/zero', 'not a regular file'],
    [dir, 'not a regular file'],
    [big, 'larger than 64 KiB: not an env file'],
  ] as const) {
    const run = await execCli(['agent', '--print', '--config', path]);
    expect(run, path).toMatchObject({ code: 2, stderr: `hostpulse: cannot read --config ${path}: ${why}\n` });
  }
});
