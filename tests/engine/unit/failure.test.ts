import { describe, expect, it } from 'vitest';
import { describeFailure, type StageFailure } from '../../../runner/failure.js';

// The one line each failure prints as (reporter, events log, --json `error`); --json also carries the object.
describe('describeFailure', () => {
  it('says each kind of failure in one line, with its hint after it', () => {
    const cases: [StageFailure, string][] = [
      [{ kind: 'exit-code', code: 3 }, 'exit code 3'],
      [{ kind: 'exit-code', code: 1, hint: 'in a container with network: none' }, 'exit code 1 (in a container with network: none)'],
      [{ kind: 'signal', signal: 'SIGKILL' }, 'killed by SIGKILL'],
      [{ kind: 'spawn-error', message: 'spawn sh ENOENT' }, 'could not start: spawn sh ENOENT'],
      [{ kind: 'missing-outputs', paths: ['a.txt', 'b/'] }, "it did not produce 'a.txt', 'b/'"],
      [
        { kind: 'missing-dep', path: 'data.csv', hint: "it is tracked by data.csv.dvc: 'lockstep pull data.csv.dvc' brings it" },
        "dep 'data.csv' does not exist (it is tracked by data.csv.dvc: 'lockstep pull data.csv.dvc' brings it)",
      ],
      [{ kind: 'upstream-failed', stage: 'train' }, "upstream stage 'train' did not complete"],
      [{ kind: 'interrupted' }, 'interrupted; it will run again next time'],
      [{ kind: 'unsafe-path', message: "refusing to run in wdir 'w': it leads outside" }, "refusing to run in wdir 'w': it leads outside"],
      [{ kind: 'image-unavailable', message: "image 'x:1' is not there" }, "image 'x:1' is not there"],
      [{ kind: 'error', message: 'EACCES' }, 'EACCES'],
    ];
    for (const [f, line] of cases) expect(describeFailure(f)).toBe(line);
  });

  it('names the first compile error by file:line:col and counts the rest', () => {
    const f: StageFailure = {
      kind: 'compile-error',
      diagnostics: [
        { message: 'Expected ";"', location: { file: 'stages/train.ts', line: 4, column: 9 } },
        { message: 'Unexpected "}"', location: { file: 'stages/train.ts', line: 7, column: 1 } },
      ],
    };
    expect(describeFailure(f)).toBe('cannot compile stage module: stages/train.ts:4:9: Expected ";" (and 1 more)');
  });
});
