#!/usr/bin/env node
/**
 * The `hostpulse` command: one CLI, a subcommand per service. Each command's modules are loaded
 * when it runs: an agent holds no bridge, broker or InfluxDB client code in memory.
 */
import { packageVersion } from '../common/version.js';
import { leanAgentRuntime } from './agent-runtime.js';

const version = packageVersion;

const HELP = `hostpulse ${version()} — watch the temperatures and load of a fleet of PCs

Usage: hostpulse <command> [options]

Commands:
  up        everything for this machine in one process: broker, bridge, live view, agent
  agent     sample this PC and publish each metric to MQTT (sensors/<host>/<metric>)
  bridge    subscribe to the agents' topics and store the samples in InfluxDB
  enrol     create the broker login of a PC (and of the stack's services)
  metrics   list every metric (JSON; --markdown for a table)

Options:
  -h, --help       show help (also: hostpulse <command> --help)
  -v, --version    show the version

Configuration is read from environment variables; see "hostpulse <command> --help".
`;

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'agent':
      leanAgentRuntime();
      return (await import('./agent.js')).runAgent(rest);
    case 'bridge':
      return (await import('./bridge.js')).runBridge(rest);
    case 'up':
      return (await import('./up.js')).runUp(rest);
    case 'enrol':
      return (await import('./enrol.js')).runEnrol(rest);
    case 'metrics': {
      const [{ catalog }, { metricTableMarkdown }] = await Promise.all([import('../protocol/catalog.js'), import('../protocol/catalog-doc.js')]);
      process.stdout.write(rest.includes('--markdown') ? `${metricTableMarkdown()}\n` : `${JSON.stringify(catalog, null, 2)}\n`);
      return 0;
    }
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(HELP);
      return command === undefined ? 2 : 0;
    case '-v':
    case '--version':
      process.stdout.write(`${version()}\n`);
      return 0;
    default:
      process.stderr.write(`hostpulse: unknown command "${command}"\n\n${HELP}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Everything is flushed and closed by now; a handle some library left open must not keep a
    // stopped service alive.
    setTimeout(() => process.exit(code), 3000).unref();
  },
  (error: unknown) => {
    process.stderr.write(`hostpulse: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
