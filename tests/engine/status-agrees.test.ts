import { afterEach, describe, expect, it } from 'vitest';
import { reproJson, TempRepo } from '../helpers.js';

/**
 * `status` and `repro --dry` are the same decision (runner/decide.ts) seen
 * twice, and `repro` then runs exactly what they said. A pipeline with one of
 * each case: a stale middle stage, a stage downstream of it, a frozen stage,
 * and a stage whose dep is missing because the stage upstream that makes it
 * is stale.
 */
const pipeline = (frozen: boolean) => `stages:
  ingest: {cmd: cp in.txt raw.txt, deps: [in.txt], outs: [raw.txt]}
  clean: {cmd: sh clean.sh, deps: [raw.txt, clean.sh], outs: [clean.txt]}
  features: {cmd: cp clean.txt features.txt, deps: [clean.txt], outs: [features.txt]}
  report: {cmd: cp clean.txt report.txt, deps: [clean.txt], outs: [report.txt], frozen: ${frozen}}
  gen: {cmd: cp seed.txt gen.txt, deps: [seed.txt], outs: [gen.txt]}
  tail: {cmd: cp gen.txt tail.txt, deps: [gen.txt], outs: [tail.txt]}
`;

interface StatusDoc {
  upToDate: boolean;
  stages: Record<string, { stale: boolean; frozen: boolean; reasons: { text: string }[] }>;
}
interface ReproDoc {
  ok: boolean;
  stages: { name: string; state: string; reasons: { text: string }[] }[];
}

let repo: TempRepo | undefined;
afterEach(() => repo?.cleanup());

describe('status and repro --dry agree', () => {
  it('on stale, downstream, frozen and missing-but-made-upstream stages, and repro runs just those', async () => {
    repo = new TempRepo({ 'pipeline.yaml': pipeline(false), 'in.txt': 'in\n', 'clean.sh': 'cp raw.txt clean.txt\n', 'seed.txt': '1\n' });
    expect((await reproJson(repo)).code).toBe(0);
    repo.write({ 'pipeline.yaml': pipeline(true), 'clean.sh': 'tr a-z A-Z < raw.txt > clean.txt\n', 'seed.txt': '2\n' });
    repo.rm('gen.txt');

    const status = await repo.run(['status', '--json']);
    expect(status.code, status.stderr).toBe(0);
    const st = JSON.parse(status.stdout) as StatusDoc;
    const dry = await reproJson(repo, ['--dry']);
    expect(dry.code, dry.stderr).toBe(0);
    const plan = JSON.parse(dry.stdout) as ReproDoc;

    const why = (reasons: { text: string }[]) => reasons.map((r) => r.text);
    const expected: Record<string, { state: string; reasons: string[] }> = {
      ingest: { state: 'skipped', reasons: [] },
      clean: { state: 'would-run', reasons: ['dep changed: clean.sh'] },
      features: { state: 'would-run', reasons: ['upstream stale: clean'] },
      report: { state: 'frozen', reasons: ['upstream stale: clean'] },
      gen: { state: 'would-run', reasons: ['dep changed: seed.txt', 'out missing: gen.txt'] },
      // gen.txt is missing, but gen is about to make it: the reason is gen, not a missing input.
      tail: { state: 'would-run', reasons: ['upstream stale: gen'] },
    };
    expect(Object.fromEntries(plan.stages.map((s) => [s.name, { state: s.state, reasons: why(s.reasons) }]))).toEqual(expected);
    for (const s of plan.stages) {
      const seen = st.stages[s.name]!;
      expect({ stage: s.name, stale: seen.stale, frozen: seen.frozen, reasons: why(seen.reasons) }).toEqual({
        stage: s.name,
        stale: s.state === 'would-run',
        frozen: s.state === 'frozen',
        reasons: why(s.reasons),
      });
    }
    expect(st.upToDate).toBe(false);

    // The human output lists the same stale stages, with the same reasons.
    const text = (await repo.run(['status'])).stdout;
    expect(text).toBe(
      [
        'clean:',
        '    dep changed: clean.sh',
        'features:',
        '    upstream stale: clean',
        'gen:',
        '    dep changed: seed.txt',
        '    out missing: gen.txt',
        'tail:',
        '    upstream stale: gen',
      ].join('\n'),
    );

    // What was said would run is what runs (clean's output changes, so no early cutoff spares features); afterwards
    // both say nothing is left.
    const real = await reproJson(repo);
    expect(real.code, real.stderr).toBe(0);
    expect(real.ran.sort()).toEqual(
      plan.stages
        .filter((s) => s.state === 'would-run')
        .map((s) => s.name)
        .sort(),
    );
    expect(real.states.report).toBe('frozen');
    expect(JSON.parse((await repo.run(['status', '--json'])).stdout).upToDate).toBe(true);
    expect((await reproJson(repo, ['--dry'])).states).toEqual({
      ingest: 'skipped',
      clean: 'skipped',
      features: 'skipped',
      report: 'frozen',
      gen: 'skipped',
      tail: 'skipped',
    });
  });
});
