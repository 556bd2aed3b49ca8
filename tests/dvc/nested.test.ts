import { execSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { TempRepo, ran, statesOf } from '../helpers.js';

let repo: TempRepo;
afterEach(() => repo?.cleanup());

function nestedRepo(): TempRepo {
  return new TempRepo({
    'pipeline.yaml': `stages:
  prepare:
    cmd: mkdir -p data && echo raw > data/raw.txt
    outs: [data/raw.txt]
  report:
    cmd: cat models/a/model.txt models/b/out/model.txt > report.txt
    deps: [models/a/model.txt, models/b/out/model.txt]
    outs: [report.txt]
`,
    // Paths relative to the file's folder; params.yaml beside it.
    'models/a/pipeline.yaml': `stages:
  train:
    cmd: cat ../../data/raw.txt > model.txt && echo \${lr} >> model.txt
    deps: [../../data/raw.txt]
    outs: [model.txt]
`,
    'models/a/params.yaml': 'lr: 0.1\n',
    // A DVC repository's file, with a wdir relative to its folder.
    'models/b/dvc.yaml': `stages:
  train:
    wdir: out
    cmd: pwd > where.txt && cat ../../../data/raw.txt > model.txt
    deps: [../../../data/raw.txt]
    outs: [model.txt, where.txt]
`,
    'models/b/out/.keep': '',
    // Never searched: installed packages and VCS/state folders.
    'node_modules/pkg/pipeline.yaml': 'not: [valid',
    '.git/pipeline.yaml': 'not: [valid',
  });
}

describe('pipeline files in subfolders', () => {
  it('are collected into one graph, run in their folders, and locked beside each file', async () => {
    repo = nestedRepo();
    const r = await repo.run(['repro', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(ran(r.stdout)).toEqual(['prepare', 'models/a/pipeline.yaml:train', 'models/b/dvc.yaml:train', 'report']);
    expect(repo.read('report.txt')).toBe('raw\n0.1\nraw\n');
    expect(repo.read('models/b/out/where.txt').trim()).toBe(repo.path('models/b/out'));

    const root = YAML.parse(repo.read('pipeline.lock'));
    expect(Object.keys(root.stages)).toEqual(['prepare', 'report']);
    const a = YAML.parse(repo.read('models/a/pipeline.lock'));
    expect(a.stages.train).toMatchObject({ deps: [{ path: '../../data/raw.txt' }], params: { 'params.yaml': { lr: 0.1 } }, outs: [{ path: 'model.txt' }] });
    const b = YAML.parse(repo.read('models/b/pipeline.lock'));
    expect(b.stages.train.outs.map((o: { path: string }) => o.path)).toEqual(['out/model.txt', 'out/where.txt']);

    // From a subfolder, the repository is still the whole graph.
    const st = await repo.run(['status'], { cwd: repo.path('models/a') });
    expect(st.stdout.trim(), st.stderr).toBe('Pipeline is up to date.');
    // A pipeline file added later is found (the remembered search notices the new folder).
    repo.write({ 'models/c/pipeline.yaml': 'stages:\n  x:\n    cmd: echo x > x.txt\n    outs: [x.txt]\n' });
    expect((await repo.run(['status'])).stdout).toBe('models/c/pipeline.yaml:x:\n    never run');
    repo.rm('models/c');
    expect((await repo.run(['status'])).stdout.trim()).toBe('Pipeline is up to date.');
  });

  it('an edit in one nested pipeline reruns exactly its stage and what depends on it; targets name a file or file:stage', async () => {
    repo = nestedRepo();
    expect((await repo.run(['repro'])).code).toBe(0);
    repo.write({ 'models/a/params.yaml': 'lr: 0.2\n' });
    const st = await repo.run(['status']);
    expect(st.stdout).toMatch(/^models\/a\/pipeline\.yaml:train:\n/);
    expect(st.stdout).toContain('    param changed: lr: 0.1 -> 0.2 (models/a/params.yaml)');
    expect(st.stdout).not.toContain('models/b');
    const only = await repo.run(['repro', '--json', 'models/a/pipeline.yaml:train']);
    expect(ran(only.stdout)).toEqual(['models/a/pipeline.yaml:train']);
    expect(statesOf(only.stdout)).not.toHaveProperty('report');
    expect(ran((await repo.run(['repro', '--json'])).stdout)).toEqual(['report']);

    const file = await repo.run(['repro', '--json', '-f', '-s', 'models/b/dvc.yaml']);
    expect(ran(file.stdout)).toEqual(['models/b/dvc.yaml:train']);
    const rootFile = await repo.run(['repro', '--json', '-f', '-s', 'pipeline.yaml:report']);
    expect(ran(rootFile.stdout)).toEqual(['report']);
    // From the nested pipeline's folder, a bare stage name means its stage, as in DVC.
    const fromSub = await repo.run(['repro', '--json', '-f', '-s', 'train'], { cwd: repo.path('models/b') });
    expect(ran(fromSub.stdout)).toEqual(['models/b/dvc.yaml:train']);
  });

  it("a mistake in a nested file is reported at that file's line", async () => {
    repo = nestedRepo();
    repo.write({ 'models/a/pipeline.yaml': 'stages:\n  train:\n    cmd: echo a\n    dep: [x]\n' });
    const r = await repo.run(['status']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe("models/a/pipeline.yaml:4:5: error: unknown field 'dep' in stage 'models/a/pipeline.yaml:train'");
  });
});

describe('gc with nested pipelines', () => {
  it('keeps what a nested pipeline.lock of an older commit needs (gc -A)', async () => {
    repo = nestedRepo();
    const git = (cmd: string) => execSync(cmd, { cwd: repo.dir });
    git('git init -q && git config user.email t@t && git config user.name t');
    expect((await repo.run(['repro'])).code).toBe(0);
    git('git add -A && git commit -qm one');
    repo.write({ 'models/a/params.yaml': 'lr: 0.2\n' });
    expect((await repo.run(['repro'])).code).toBe(0);
    // Only the workspace counts: the first model of models/a is no longer needed.
    const now = JSON.parse((await repo.run(['gc', '--json'])).stdout);
    expect(now.objects).toBeGreaterThan(0);
    // With every commit, models/a/pipeline.lock at the first commit still names it.
    const all = JSON.parse((await repo.run(['gc', '-A', '--json'])).stdout);
    expect(all.objects).toBe(0);
  });
});
