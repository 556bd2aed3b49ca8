import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TempRepo, filesUnder, statesOf } from '../helpers.js';

const PIPELINE = `stages:
  make:
    cmd: echo big > big.bin && echo model > model.txt && echo special > special.txt
    outs:
      - big.bin: {push: false}
      - model.txt
      - special.txt: {remote: backup}
`;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-remote-'));
  cleanups.push(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}
function repoWith(files: Record<string, string>): TempRepo {
  const r = new TempRepo(files);
  cleanups.push(() => r.cleanup());
  return r;
}
const objects = (dir: string) =>
  filesUnder(dir)
    .filter((f) => f.includes('files/xxh64/'))
    .map((f) => fs.readFileSync(f, 'utf8'))
    .sort();

describe("outputs' push: false and remote: NAME", () => {
  it('push sends each output to its own remote and never a push: false one; pull brings them back from there', async () => {
    const origin = tmpDir();
    const backup = tmpDir();
    const config = `remotes:\n  origin:\n    url: ${origin}\n  backup:\n    url: ${backup}\ndefault: origin\n`;
    const repo = repoWith({ 'pipeline.yaml': PIPELINE, '.lockstep/config': config });
    expect((await repo.run(['repro'])).code).toBe(0);

    const p = await repo.run(['push']);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toContain('not pushed (push: false): big.bin');
    expect(objects(origin)).toEqual(['model\n']);
    expect(objects(backup)).toEqual(['special\n']);
    expect((await repo.run(['status', '--remote'])).stdout).toBe("All 3 cached outputs are both in the local cache and on 'origin' (or the remote they name).");

    // With -r, outputs that name no remote go there too; those naming another remote stay out.
    const pr = await repo.run(['push', '-r', 'backup', '--json']);
    expect(pr.code, pr.stderr).toBe(0);
    expect(JSON.parse(pr.stdout)).toMatchObject({ remote: 'backup', transferred: 1, notPushed: ['big.bin'] });
    expect(objects(backup)).toEqual(['model\n', 'special\n']);

    // A clone: pipeline, lock and config from git, no cache.
    const clone = repoWith({ 'pipeline.yaml': PIPELINE, 'pipeline.lock': repo.read('pipeline.lock'), '.lockstep/config': config });
    const pull = await clone.run(['pull']);
    expect(clone.read('model.txt')).toBe('model\n');
    expect(clone.read('special.txt')).toBe('special\n');
    // big.bin was never pushed, so it cannot come back (DVC fails the same way): named, exit 1.
    expect(pull.code).toBe(1);
    expect(pull.stderr).toMatch(/✗ big\.bin: .* is not on remote 'origin'/);
    expect(clone.exists('big.bin')).toBe(false);
  });

  it('with no default remote, outputs that all name their remote still push', async () => {
    const one = tmpDir();
    const two = tmpDir();
    const repo = repoWith({
      'pipeline.yaml': 'stages:\n  make:\n    cmd: echo 1 > a.txt && echo 2 > b.txt\n    outs:\n      - a.txt: {remote: one}\n      - b.txt: {remote: two}\n',
      '.lockstep/config': `remotes:\n  one:\n    url: ${one}\n  two:\n    url: ${two}\n`,
    });
    expect((await repo.run(['repro'])).code).toBe(0);
    const p = await repo.run(['push']);
    expect(p.code, p.stderr).toBe(0);
    expect(objects(one)).toEqual(['1\n']);
    expect(objects(two)).toEqual(['2\n']);
    expect((await repo.run(['status', '--remote'])).stdout).toBe('All 2 cached outputs are both in the local cache and on the remotes they name.');
  });

  it('repro --pull restores outputs from the remote each one names', async () => {
    const one = tmpDir();
    const two = tmpDir();
    const yaml = 'stages:\n  make:\n    cmd: echo 1 > a.txt && echo 2 > b.txt\n    outs:\n      - a.txt\n      - b.txt: {remote: two}\n';
    const config = `remotes:\n  one:\n    url: ${one}\n  two:\n    url: ${two}\ndefault: one\n`;
    const repo = repoWith({ 'pipeline.yaml': yaml, '.lockstep/config': config });
    expect((await repo.run(['repro'])).code).toBe(0);
    expect((await repo.run(['push', '--no-run-cache'])).code).toBe(0);
    const clone = repoWith({ 'pipeline.yaml': yaml, 'pipeline.lock': repo.read('pipeline.lock'), '.lockstep/config': config });
    const r = await clone.run(['repro', '--pull', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(statesOf(r.stdout)).toEqual({ make: 'restored' });
    expect(clone.read('b.txt')).toBe('2\n');
  });

  it('an output naming a remote that is not configured is a clear error, exit 2', async () => {
    const origin = tmpDir();
    const repo = repoWith({
      'pipeline.yaml': PIPELINE.replace('backup', 'bakup'),
      '.lockstep/config': `remotes:\n  origin:\n    url: ${origin}\n  backup:\n    url: ${origin}\ndefault: origin\n`,
    });
    expect((await repo.run(['repro'])).code).toBe(0);
    const r = await repo.run(['push']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe("error: no remote named 'bakup'");
  });
});

describe('dvc.yaml fields Lockstep does not implement are refused by name', () => {
  it('checkpoint outputs and datasets', async () => {
    const repo = repoWith({
      'dvc.yaml': 'datasets:\n  - name: d\n    type: dvc\nstages:\n  a:\n    cmd: echo a > a.txt\n    outs:\n      - a.txt: {checkpoint: true}\n',
    });
    const r = await repo.run(['status']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("dvc.yaml:1:1: error: 'datasets' in the pipeline file is not supported by Lockstep");
    expect(r.stderr).toContain("dvc.yaml:8:17: error: 'checkpoint' in outs entry 'a.txt' is not supported by Lockstep");
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
