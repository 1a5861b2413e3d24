/** The collectors the agent runs, in publishing order. */
import type { CollectorFactory } from '../collector.js';
import { battery } from './battery.js';
import { cpu } from './cpu.js';
import { disk } from './disk.js';
import { gpu } from './gpu.js';
import { memory } from './memory.js';
import { network } from './network.js';
import { system } from './system.js';

export const collectors = { cpu, system, memory, disk, network, gpu, battery } as const satisfies Record<string, CollectorFactory>;
