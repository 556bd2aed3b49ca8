import { afterEach, describe, expect, it } from 'vitest';
import { TempRepo } from '../helpers.js';

let repo: TempRepo;
afterEach(() => repo?.cleanup());

async function errorOf(files: Record<string, string>, args = ['status']) {
  repo = new TempRepo(files);
  const r = await repo.run(args);
  expect(r.code).not.toBe(0);
  expect(r.stderr).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/); // never a stack trace
  return r.stderr;
}

describe('bad pipeline.yaml gets a clear error', () => {
  it('malformed YAML names file:line:column', async () => {
    const err = await errorOf({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: echo\n   deps: [x\n' });
    expect(err).toMatch(/^pipeline\.yaml:\d+:\d+: error: invalid YAML/m);
  });

  it('an unknown stage field is named with the closest valid one and its position', async () => {
    const err = await errorOf({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: echo hi\n    dep: [x]\n' });
    expect(err).toContain("pipeline.yaml:4:5: error: unknown field 'dep' in stage 'a'");
    expect(err).toContain("did you mean 'deps'?");
  });

  it('an unknown top-level field is named', async () => {
    const err = await errorOf({ 'pipeline.yaml': 'stage:\n  a:\n    cmd: echo\n' });
    expect(err).toContain("unknown field 'stage' in the pipeline file");
    expect(err).toContain("did you mean 'stages'?");
  });

  it('an unknown output option is named', async () => {
    const err = await errorOf({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: echo\n    outs:\n      - o.txt:\n          cahce: false\n' });
    expect(err).toContain("unknown field 'cahce'");
    expect(err).toContain("did you mean 'cache'?");
  });

  it('a cycle is printed stage by stage', async () => {
    const err = await errorOf({
      'pipeline.yaml': `stages:
  a: {cmd: cp c.txt a.txt, deps: [c.txt], outs: [a.txt]}
  b: {cmd: cp a.txt b.txt, deps: [a.txt], outs: [b.txt]}
  c: {cmd: cp b.txt c.txt, deps: [b.txt], outs: [c.txt]}
`,
    });
    expect(err).toMatch(/the pipeline has a cycle: (a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c)/);
  });

  it('two stages with the same out are refused, naming both', async () => {
    const err = await errorOf({
      'pipeline.yaml': `stages:
  a: {cmd: echo 1 > o.txt, outs: [o.txt]}
  b: {cmd: echo 2 > o.txt, outs: [o.txt]}
`,
    });
    expect(err).toContain("output 'o.txt' is produced by two stages: 'a' and 'b'");
  });

  it('nested outputs of two stages are refused', async () => {
    const err = await errorOf({
      'pipeline.yaml': `stages:
  a: {cmd: mkdir -p d, outs: [d]}
  b: {cmd: echo 2 > d/x, outs: [d/x]}
`,
    });
    expect(err).toContain("outputs overlap: 'd' of stage 'a' and 'd/x' of stage 'b'");
  });

  it('a dep that neither exists nor is produced is named', async () => {
    const err = await errorOf({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: cat in.txt\n    deps: [in.txt]\n' });
    expect(err).toContain("dep 'in.txt' of stage 'a' does not exist and no stage produces it");
    expect(err).toMatch(/^pipeline\.yaml:2:3: /m);
  });

  it('an unknown param key is named with its file and the closest key', async () => {
    const err = await errorOf({
      'pipeline.yaml': 'stages:\n  a:\n    cmd: echo\n    params: [train.lrate]\n',
      'params.yaml': 'train:\n  lr: 0.1\n',
    });
    expect(err).toContain("param 'train.lrate' not found in params.yaml");
    expect(err).toContain("did you mean 'train.lr'?");
  });

  it('a missing params file is named', async () => {
    const err = await errorOf({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: echo\n    params:\n      - other.yaml: [x]\n' });
    expect(err).toContain("params file 'other.yaml' does not exist");
  });

  it('an out outside the repository is refused', async () => {
    const err = await errorOf({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: echo\n    outs: [../escape.txt]\n' });
    expect(err).toContain("output '../escape.txt' is outside the repository");
  });

  it('an undefined ${} variable is named with its location', async () => {
    const err = await errorOf({
      'pipeline.yaml': 'stages:\n  a:\n    cmd: echo ${train.epoch}\n',
      'params.yaml': 'train:\n  epochs: 3\n',
    });
    expect(err).toContain("could not find 'train.epoch'");
    expect(err).toContain("did you mean 'train.epochs'?");
    expect(err).toMatch(/pipeline\.yaml:3:\d+/);
  });

  it('a stage with both cmd and module, or neither, is refused', async () => {
    let err = await errorOf({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: echo\n    module: x.ts\n' });
    expect(err).toContain("has both 'cmd' and 'module'");
    repo.cleanup();
    err = await errorOf({ 'pipeline.yaml': 'stages:\n  a:\n    deps: []\n' });
    expect(err).toContain("stage 'a' has no 'cmd'");
  });

  it('several problems are reported together', async () => {
    const err = await errorOf({ 'pipeline.yaml': 'stages:\n  a:\n    cmdd: echo\n  b:\n    cmd: echo\n    outz: [x]\n' });
    expect(err).toContain("unknown field 'cmdd'");
    expect(err).toContain("unknown field 'outz'");
  });

  it('a missing pipeline.yaml is explained', async () => {
    const err = await errorOf({ README: 'nothing here' });
    expect(err).toContain('no pipeline.yaml found');
  });

  it('a corrupted pipeline.lock is explained with a way out', async () => {
    const err = await errorOf({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: echo\n', 'pipeline.lock': 'stages:\n  a: [1, 2\n' });
    expect(err).toMatch(/pipeline\.lock:\d+:\d+: error: invalid YAML/);
    repo.cleanup();
    const err2 = await errorOf({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: echo\n', 'pipeline.lock': 'stages:\n  a: {deps: []}\n' });
    expect(err2).toContain('pipeline.lock is not valid');
    expect(err2).toContain('git checkout -- pipeline.lock');
  });

  it('unknown commands and flags are named', async () => {
    repo = new TempRepo({ 'pipeline.yaml': 'stages: {}\n' });
    const r = await repo.run(['statsu']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'statsu'");
    expect(r.stderr).toContain("did you mean 'status'?");
    const r2 = await repo.run(['repro', '--jobz', '2']);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toBe("error: unknown option '--jobz'\n  hint: did you mean '--jobs'?");
    const r3 = await repo.run(['repro', '-j', '0']);
    expect(r3.stderr).toContain('--jobs must be a whole number of at least 1');
  });
});
