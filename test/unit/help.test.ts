/** Each command's --help lists the variables of its config schema, and no variable the schema lacks. */
import { describe, expect, it } from 'vitest';
import { agentSchema } from '../../agent/config.js';
import { bridgeSchema } from '../../bridge/config.js';
import { brokerSchema } from '../../broker/config.js';
import { AGENT_HELP } from '../../cli/agent.js';
import { BRIDGE_HELP } from '../../cli/bridge.js';
import { UP_HELP } from '../../cli/up.js';

/** The variables a help text names at the start of its lines (`A, B   text` lists both; `A=1` is A). */
function listed(help: string): string[] {
  const names = new Set<string>();
  for (const line of help.split('\n')) {
    const head = /^ {2}([A-Z][A-Z0-9_]*(?:=\S+)?(?:, [A-Z][A-Z0-9_]*)*)(?:, …)?(?: |$)/.exec(line)?.[1];
    for (const name of head?.split(', ') ?? []) names.add(name.replace(/=.*/, ''));
  }
  return [...names].sort();
}

describe('--help', () => {
  it.each([
    ['agent', AGENT_HELP, Object.keys(agentSchema.shape)],
    ['bridge', BRIDGE_HELP, Object.keys(bridgeSchema.shape)],
  ])('hostpulse %s lists every variable of its schema, and no other', (_, help, variables) => {
    expect(listed(help)).toEqual([...variables].sort());
  });

  it("hostpulse up lists its broker's variables and its own, and names only variables of the services it runs", () => {
    const known = new Set([...Object.keys(brokerSchema.shape), 'LOCAL_AGENT', ...Object.keys(agentSchema.shape), ...Object.keys(bridgeSchema.shape)]);
    const names = listed(UP_HELP);
    for (const v of [...Object.keys(brokerSchema.shape), 'LOCAL_AGENT']) expect(names).toContain(v);
    expect(names.filter((n) => !known.has(n))).toEqual([]);
  });
});
