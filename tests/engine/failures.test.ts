import { afterEach, describe, expect, it } from 'vitest';
import { TempRepo } from '../helpers.js';

let repo: TempRepo | undefined;
afterEach(() => repo?.cleanup());

interface Doc {
  ok: boolean;
  stages: { name: string; state: string; error?: string; failure?: Record<string, unknown> }[];
}

describe('failures are typed values', () => {
  it('repro --json gives each failed, blocked stage its error line and a failure object; a missing dep names the pointer', async () => {
    repo = new TempRepo({
      'pipeline.yaml': `stages:
  crash: {cmd: 'echo boom >&2; exit 3', outs: [c.txt]}
  lazy: {cmd: 'true', outs: [l.txt]}
  after: {cmd: cp c.txt a.txt, deps: [c.txt], outs: [a.txt]}
  fine: {cmd: echo ok > f.txt, outs: [f.txt]}
  needs: {cmd: cp data.csv n.txt, deps: [data.csv], outs: [n.txt]}
`,
      'data.csv.dvc': 'outs:\n- path: data.csv\n  hash: xxh64\n  xxh64: 0123456789abcdef\n  size: 3\n',
    });
    const r = await repo.run(['repro', '-k', '--json']);
    expect(r.code, r.stderr).toBe(1);
    const doc = JSON.parse(r.stdout) as Doc;
    expect(doc.ok).toBe(false);
    const by = Object.fromEntries(doc.stages.map((s) => [s.name, { state: s.state, error: s.error, failure: s.failure }]));
    expect(by).toEqual({
      crash: { state: 'failed', error: 'exit code 3', failure: { kind: 'exit-code', code: 3 } },
      lazy: { state: 'failed', error: "it did not produce 'l.txt'", failure: { kind: 'missing-outputs', paths: ['l.txt'] } },
      after: { state: 'blocked', error: "upstream stage 'crash' did not complete", failure: { kind: 'upstream-failed', stage: 'crash' } },
      fine: { state: 'done', error: undefined, failure: undefined },
      needs: {
        state: 'failed',
        error: "dep 'data.csv' does not exist (it is tracked by data.csv.dvc: 'lockstep pull data.csv.dvc' brings it)",
        failure: { kind: 'missing-dep', path: 'data.csv', hint: "it is tracked by data.csv.dvc: 'lockstep pull data.csv.dvc' brings it" },
      },
    });
    // The same lines, for a person.
    const human = await repo.run(['repro', '-k']);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/✗ crash: failed in [\d.]+m?s: exit code 3\n/);
    expect(human.stdout).toContain("- after: blocked: upstream stage 'crash' did not complete\n");
  });
});
