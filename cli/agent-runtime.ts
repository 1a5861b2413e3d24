/**
 * The agent's runtime: V8 flags set when `hostpulse agent` starts (cli/main.ts, before it loads the
 * agent's modules) and Node's options its launchers give it. A module of its own, light to import:
 * main.ts, the bench and the tests use it without loading the agent.
 */
import { setFlagsFromString } from 'node:v8';

/**
 * V8 set up for a process that wakes for a few milliseconds now and then, applied at run time with
 * v8.setFlagsFromString, so that it holds however the agent is started (npx, systemd, Docker, a
 * scheduled task, `node dist/cli/main.js agent`), without a second process (Node 20 cannot exec
 * itself; a parent waiting on a re-executed child would double the memory), and only for
 * `hostpulse agent` (`up` and `bridge` keep V8's defaults). Both flags are read by V8 each time it
 * acts on them, which is why they work after start-up; heap sizes (--max-semi-space-size,
 * --max-old-space-size) are fixed when V8 starts and cannot be set this way.
 *
 * - `--no-turbofan`: the optimizing compiler buys the agent nothing worth having and costs it about
 *   10 MiB of resident memory for the process's life (its own code, its compilation zones).
 * - `--semi-space-growth-factor=1`: the young generation stays at its initial 1 MiB instead of
 *   doubling while modules load (to 16 MiB, held until V8's memory reducer runs seconds later); an
 *   agent allocates little per round, so this costs a few sub-millisecond scavenges.
 *
 * They act on what is compiled and allocated after this call: main.ts loads the agent's modules after it.
 */
export function leanAgentRuntime(): void {
  setFlagsFromString('--no-turbofan');
  setFlagsFromString('--semi-space-growth-factor=1');
}

/**
 * Node's options for the agent, given where it is launched: the service files in deploy/, the
 * Compose stack's agent, the bench and the tests all start it with them. `--jitless`: V8 only
 * interprets (no machine code is generated, so no executable memory is allocated and the
 * compilers' code is never paged in): about 2 MiB less resident memory for the same CPU per round
 * (the agent's rounds are a few milliseconds of mostly native work), measured with the bench's
 * agent-glances stage. It must be given at launch (V8 fixes it when it starts), and it disables
 * WebAssembly, which the agent does not use; `--no-expose-wasm` says so, or V8 prints "disabling flag
 * --expose_wasm due to conflicting flags" on stderr at every start. Without them the agent works the same.
 */
export const AGENT_NODE_OPTIONS = ['--jitless', '--no-expose-wasm'] as const;
