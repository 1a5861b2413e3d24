/**
 * The order test files start in: the slowest first, so that the two workers end together instead
 * of one of them starting a long file last. vitest orders by the timings of the last run it
 * cached; a fresh clone has none, and would go by file size.
 */
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** Files that take minutes (waiting out outages they stage), slowest first. */
const SLOWEST = [
  'test/stack/',
  'test/faults/faults-database.test.ts',
  'test/faults/faults-network.test.ts',
  'test/faults/faults-database-errors.test.ts',
  'test/faults/faults-broker.test.ts',
];

const rank = (file: TestSpecification): number => {
  const i = SLOWEST.findIndex((s) => file.moduleId.includes(`/${s}`));
  return i === -1 ? SLOWEST.length : i;
};

export class SlowestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}
