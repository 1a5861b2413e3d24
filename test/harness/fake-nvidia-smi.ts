/**
 * A fake `nvidia-smi` for a machine without a GPU: a small script that checks the query and format
 * the agent asks for, honours `-lms`, prints the CSV lines recorded from a real 2× RTX 5090
 * workstation (test/fixtures/machines) once per interval, and notes each start in a file.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NVIDIA_SMI_FIELDS, type Recording } from '../../agent/probe/index.js';
import { tempDir } from './process.js';

const WORKSTATION = JSON.parse(readFileSync(new URL('../fixtures/machines/linux-2gpu-workstation.json', import.meta.url), 'utf8')) as Recording;
/** The two recorded blocks (two GPUs each), played in turn. */
export const BLOCKS = WORKSTATION.rounds.map((r) => r.nvidiaSmi ?? '');

/**
 * A fake nvidia-smi: refuses another query or format as the real one does, then prints a block every
 * `-lms` milliseconds. FAKE_SMI_BLOCKS: exit after that many blocks; FAKE_SMI_HANG_AFTER: stay
 * silent (running) after that many. Output is written with shell builtins, so that a write to a
 * closed pipe ends it (SIGPIPE), as it ends the real one.
 */
const FAKE = `#!/bin/sh
echo "$$ $*" >> "$FAKE_SMI_STARTS"
query=""; format=""; ms=""
while [ $# -gt 0 ]; do
  case "$1" in
    --query-gpu=*) query="\${1#--query-gpu=}" ;;
    --format=*) format="\${1#--format=}" ;;
    -lms) shift; ms="$1" ;;
  esac
  shift
done
if [ "$query" != "${NVIDIA_SMI_FIELDS.join(',')}" ] || [ "$format" != "csv,noheader,nounits" ] || [ -z "$ms" ]; then
  echo "Invalid combination of input arguments. Please run 'nvidia-smi -h' for help." >&2
  exit 2
fi
seconds=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
n=0
while :; do
  n=$((n + 1))
  block="$FAKE_SMI_DIR/block$(( (n - 1) % 2 )).csv"
  while IFS= read -r line; do printf '%s\\n' "$line"; done < "$block"
  if [ -n "$FAKE_SMI_BLOCKS" ] && [ "$n" -ge "$FAKE_SMI_BLOCKS" ]; then exit 0; fi
  if [ -n "$FAKE_SMI_HANG_AFTER" ] && [ "$n" -ge "$FAKE_SMI_HANG_AFTER" ]; then exec sleep 3600; fi
  sleep "$seconds"
done
`;

export interface Fake {
  readonly dir: string;
  readonly path: string;
  readonly startsFile: string;
  env(extra?: Record<string, string>): Record<string, string>;
  /** The PIDs of the fake processes started so far. */
  starts(): number[];
}

export async function fakeNvidiaSmi(): Promise<Fake> {
  const dir = await tempDir('fake-nvidia-smi');
  const path = join(dir, 'nvidia-smi');
  writeFileSync(path, FAKE);
  chmodSync(path, 0o755);
  BLOCKS.forEach((block, i) => writeFileSync(join(dir, `block${i}.csv`), block));
  const startsFile = join(dir, 'starts');
  writeFileSync(startsFile, '');
  return {
    dir,
    path,
    startsFile,
    env: (extra = {}) => ({ PATH: `${dir}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, FAKE_SMI_DIR: dir, FAKE_SMI_STARTS: startsFile, ...extra }),
    starts: () =>
      readFileSync(startsFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => Number(l.split(' ')[0])),
  };
}

export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
