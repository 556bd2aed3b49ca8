import { reproduce, type ReproArgs } from '../reproduce.js';
import { HumanReporter, JsonReporter } from '../reporter.js';
import type { Io } from '../cli-io.js';

/** `lockstep repro`: the options are parsed (cli.ts); this picks how results are shown and calls the engine. */
export async function reproCommand(io: Io, args: ReproArgs & { readonly json: boolean }): Promise<number> {
  const shown = args.json ? new JsonReporter(io.stdout, io.stderr) : new HumanReporter(io.stdout, args.jobs > 1);
  return reproduce(io, args, shown);
}
