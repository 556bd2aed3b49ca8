import { describe, expect, it } from 'vitest';
import { crashSweep, prng } from '../../bench/crash.js';

// A fixed seed: the same commands and kill moments (relative to each command's measured length) every run.
// `npm run bench -- crash` runs a longer sweep with LOCKSTEP_CRASH_SEED / LOCKSTEP_CRASH_KILLS.
const SEED = 20261127;
const KILLS = 12;

describe('randomized crash test (kill -9 of repro -j 2, push, pull, exp run --run-all -j 2, checkout)', () => {
  it('the PRNG is seeded: the same seed gives the same sequence', () => {
    const a = prng(7);
    const b = prng(7);
    const xs = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(prng(8)()).not.toBe(xs[0]);
  });

  it(`after each of ${KILLS} kills: the lock parses, every object verifies, a rerun gives the clean run's bytes, no experiment stays running`, async () => {
    const lines: string[] = [];
    const r = await crashSweep({ seed: SEED, kills: KILLS, log: (l) => lines.push(l) });
    const detail = r.failures.map((f) => `kill ${f.kill} (${f.command} after ${f.delayMs} ms): ${f.problem}`).join('\n');
    expect(
      r.failures,
      `crash sweep failed with seed ${SEED} (replay: LOCKSTEP_CRASH_SEED=${SEED} LOCKSTEP_CRASH_KILLS=${KILLS} npm run bench -- crash)\n${detail}\n${lines.join('\n')}`,
    ).toEqual([]);
    // Most kills must land mid-command, or the test tests little.
    expect(r.landed, lines.join('\n')).toBeGreaterThanOrEqual(KILLS / 2);
    console.log(
      `crash sweep: seed ${SEED}, ${r.kills} kills (${r.landed} mid-command) in ${r.seconds.toFixed(1)} s; litter left for the cleanup change: ${JSON.stringify(r.litter)}`,
    );
  }, 120_000);
});
