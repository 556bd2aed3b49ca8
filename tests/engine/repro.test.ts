import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { TempRepo, ran, statesOf } from '../helpers.js';

let repo: TempRepo;
afterEach(() => repo?.cleanup());

const CHAIN = `stages:
  prepare:
    cmd: tr a-z A-Z < in.txt > prepared.txt
    deps: [in.txt]
    outs: [prepared.txt]
  train:
    cmd: sh -c 'cat prepared.txt; echo "lr=\${train.lr}"' > model.txt
    deps: [prepared.txt]
    params: [train.epochs]
    outs: [model.txt]
  evaluate:
    cmd: wc -c < model.txt > score.txt
    deps: [model.txt]
    metrics:
      - score.txt: {cache: false}
`;

function chainRepo(): TempRepo {
  return new TempRepo({ 'pipeline.yaml': CHAIN, 'params.yaml': 'train:\n  lr: 0.1\n  epochs: 3\n', 'in.txt': 'hello\n' });
}

async function repro(args: string[] = []) {
  const r = await repo.run(['repro', '--json', ...args]);
  return { ...r, ran: r.stdout.trim().startsWith('{') ? ran(r.stdout) : [], states: r.stdout.trim().startsWith('{') ? statesOf(r.stdout) : {} };
}

async function statusJson() {
  const r = await repo.run(['status', '--json']);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as { upToDate: boolean; stages: Record<string, { stale: boolean; reasons: { kind: string; text: string }[] }> };
}

describe('repro runs only what is stale', () => {
  it('runs the chain in order, then nothing', async () => {
    repo = chainRepo();
    const first = await repro();
    expect(first.code).toBe(0);
    expect(first.ran).toEqual(['prepare', 'train', 'evaluate']);
    expect(repo.read('model.txt')).toBe('HELLO\nlr=0.1\n');
    const second = await repro();
    expect(second.ran).toEqual([]);
    expect(Object.values(second.states)).toEqual(['skipped', 'skipped', 'skipped']);
    expect((await statusJson()).upToDate).toBe(true);
  });

  it('records cmd, deps with hash and size, params with values and outs in pipeline.lock', async () => {
    repo = chainRepo();
    await repro();
    const lock = YAML.parse(repo.read('pipeline.lock'));
    expect(Object.keys(lock.stages)).toEqual(['prepare', 'train', 'evaluate']);
    expect(lock.stages.train.cmd).toBe(`sh -c 'cat prepared.txt; echo "lr=0.1"' > model.txt`);
    expect(lock.stages.train.deps[0]).toMatchObject({ path: 'prepared.txt', size: 6 });
    expect(lock.stages.train.deps[0].xxh64).toMatch(/^[0-9a-f]{16}$/);
    // params used through ${} are tracked, like declared ones
    expect(lock.stages.train.params).toEqual({ 'params.yaml': { 'train.epochs': 3, 'train.lr': 0.1 } });
    expect(lock.stages.evaluate.outs[0]).toMatchObject({ path: 'score.txt' });
    // written atomically: no temp files left beside it
    expect(fs.readdirSync(repo.dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('a changed dep reruns it and everything downstream, and status says which path', async () => {
    repo = chainRepo();
    await repro();
    repo.write({ 'in.txt': 'bye\n' });
    const st = await statusJson();
    expect(st.stages.prepare!.reasons.map((r) => r.text)).toEqual(['dep changed: in.txt']);
    expect(st.stages.train!.reasons.map((r) => r.text)).toEqual(['upstream stale: prepare']);
    expect((await repro()).ran).toEqual(['prepare', 'train', 'evaluate']);
  });

  it('a changed param reruns from that stage on, and status shows key, old and new', async () => {
    repo = chainRepo();
    await repro();
    repo.write({ 'params.yaml': 'train:\n  lr: 0.1\n  epochs: 5\n' });
    const text = (await repo.run(['status'])).stdout;
    expect(text).toContain('train:\n    param changed: train.epochs: 3 -> 5 (params.yaml)');
    expect(text).not.toContain('prepare:');
    // epochs does not change this toy model, so evaluate is cut off early
    expect((await repro()).states).toEqual({ prepare: 'skipped', train: 'done', evaluate: 'skipped' });
  });

  it('a changed cmd reruns the stage', async () => {
    repo = chainRepo();
    await repro();
    repo.write({ 'pipeline.yaml': CHAIN.replace('wc -c', 'wc -l') });
    const st = await statusJson();
    expect(st.stages.evaluate!.reasons.map((r) => r.kind)).toEqual(['cmd-changed']);
    expect((await repro()).ran).toEqual(['evaluate']);
  });

  it('adding or removing a dep or a param key makes a stage stale (unlike DVC)', async () => {
    repo = chainRepo();
    repo.write({ 'extra.txt': 'x' });
    await repro();
    repo.write({ 'pipeline.yaml': CHAIN.replace('deps: [model.txt]', 'deps: [model.txt, extra.txt]') });
    expect((await statusJson()).stages.evaluate!.reasons.map((r) => r.text)).toEqual(['dep added: extra.txt']);
    await repro();
    repo.write({ 'pipeline.yaml': CHAIN });
    expect((await statusJson()).stages.evaluate!.reasons.map((r) => r.text)).toEqual(['dep removed: extra.txt']);
    await repro();
    repo.write({ 'pipeline.yaml': CHAIN.replace('params: [train.epochs]', 'params: [train.epochs, train.lr]') });
    // train.lr was already tracked through ${}; declaring it changes nothing
    expect((await statusJson()).upToDate).toBe(true);
    repo.write({ 'pipeline.yaml': CHAIN.replace('echo "lr=${train.lr}"', 'echo "lr=0.1"') });
    expect((await statusJson()).stages.train!.reasons.map((r) => r.text)).toEqual(['param removed: train.lr (params.yaml)']);
  });

  it('a modified or missing out makes its stage stale', async () => {
    repo = chainRepo();
    await repro();
    repo.write({ 'model.txt': 'tampered' });
    expect((await statusJson()).stages.train!.reasons.map((r) => r.text)).toEqual(['out modified: model.txt']);
    repo.rm('model.txt');
    expect((await statusJson()).stages.train!.reasons.map((r) => r.text)).toEqual(['out missing: model.txt']);
    // The lock's outputs are in the cache: restored, not rerun; identical output → evaluate cut off.
    const r = await repro();
    expect(r.ran).toEqual([]);
    expect(r.states).toEqual({ prepare: 'skipped', train: 'restored', evaluate: 'skipped' });
    expect(repo.read('model.txt')).not.toBe('tampered');
  });

  it('early cutoff: a stage whose outputs come out identical leaves downstream skipped', async () => {
    repo = chainRepo();
    await repro();
    repo.write({ 'in.txt': 'HELLO\n' }); // uppercases to the same prepared.txt
    const r = await repro();
    expect(r.ran).toEqual(['prepare']);
    expect(r.states).toEqual({ prepare: 'done', train: 'skipped', evaluate: 'skipped' });
  });

  it('-f forces, -s runs only the target, --downstream runs the target and after', async () => {
    repo = chainRepo();
    await repro();
    expect((await repro(['-f'])).ran).toEqual(['prepare', 'train', 'evaluate']);
    expect((await repro(['-f', '-s', 'train'])).ran).toEqual(['train']);
    expect((await repro(['-f', '--downstream', 'train'])).ran).toEqual(['train', 'evaluate']);
    expect((await repro(['-f', 'train'])).ran).toEqual(['prepare', 'train']);
    // a target can be an output path
    expect((await repro(['-f', '-s', 'model.txt'])).ran).toEqual(['train']);
  });

  it('--dry runs nothing and says what would run and why', async () => {
    repo = chainRepo();
    const r = await repo.run(['repro', '--dry']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('prepare: would-run (never run)');
    expect(r.stdout).toContain('evaluate: would-run (never run; upstream stale: train)');
    expect(repo.exists('prepared.txt')).toBe(false);
    expect(repo.exists('pipeline.lock')).toBe(false);
  });

  it('an unknown target is named', async () => {
    repo = chainRepo();
    const r = await repo.run(['repro', 'trian']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown stage or output 'trian'");
    expect(r.stderr).toContain("did you mean 'train'?");
  });

  it('outs are removed before a stage runs unless persist', async () => {
    repo = new TempRepo({
      'pipeline.yaml': `stages:
  fresh: {cmd: "sh -c 'test ! -e f.txt && echo new > f.txt'", deps: [v.txt], outs: [f.txt]}
  kept:
    cmd: sh -c 'cat v.txt >> k.txt'
    deps: [v.txt]
    outs:
      - k.txt: {persist: true}
`,
      'v.txt': '1\n',
    });
    await repro();
    repo.write({ 'v.txt': '2\n' });
    const r = await repro();
    expect(r.ran).toEqual(['fresh', 'kept']);
    expect(repo.read('k.txt')).toBe('1\n2\n');
  });
});

describe('failures', () => {
  const FAILING = `stages:
  good: {cmd: echo ok > good.txt, outs: [good.txt]}
  bad: {cmd: "sh -c 'echo partial > bad.txt; echo oops >&2; exit 3'", deps: [good.txt], outs: [bad.txt]}
  after: {cmd: cp bad.txt after.txt, deps: [bad.txt], outs: [after.txt]}
  other: {cmd: echo x > other.txt, deps: [o.txt], outs: [other.txt]}
`;

  it('a failing stage exits non-zero, keeps its lock entry, blocks its downstream and stops', async () => {
    repo = new TempRepo({ 'pipeline.yaml': FAILING, 'o.txt': 'o' });
    const r = await repro();
    expect(r.code).toBe(1);
    expect(r.states).toEqual({ good: 'done', bad: 'failed', after: 'blocked', other: 'not-run' });
    const lock = YAML.parse(repo.read('pipeline.lock'));
    expect(Object.keys(lock.stages)).toEqual(['good']);
    expect(r.stderr).toContain('bad | oops');
  });

  it('-k goes on with independent branches', async () => {
    repo = new TempRepo({ 'pipeline.yaml': FAILING, 'o.txt': 'o' });
    const r = await repro(['-k']);
    expect(r.code).toBe(1);
    expect(r.states).toEqual({ good: 'done', bad: 'failed', after: 'blocked', other: 'done' });
  });

  it('a failed stage with a previous lock entry keeps that entry', async () => {
    repo = new TempRepo({ 'pipeline.yaml': FAILING.replace('exit 3', 'exit 0'), 'o.txt': 'o' });
    await repro();
    const before = YAML.parse(repo.read('pipeline.lock')).stages.bad;
    repo.write({ 'pipeline.yaml': FAILING });
    const r = await repro();
    expect(r.states.bad).toBe('failed');
    expect(YAML.parse(repo.read('pipeline.lock')).stages.bad).toEqual(before);
    // and it is stale next time, so it reruns
    expect((await statusJson()).stages.bad!.stale).toBe(true);
  });

  it('a stage that does not produce a declared out fails, naming it', async () => {
    repo = new TempRepo({ 'pipeline.yaml': 'stages:\n  a: {cmd: "true", outs: [never.txt]}\n' });
    const r = await repo.run(['repro']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('a: failed');
    expect(r.stdout).toContain("it did not produce 'never.txt'");
  });

  it('human output has a line per stage with state and duration, and a summary', async () => {
    repo = new TempRepo({ 'pipeline.yaml': FAILING, 'o.txt': 'o' });
    const r = await repo.run(['repro', '-k']);
    expect(r.stdout).toMatch(/✓ good: done in \d+ms/);
    expect(r.stdout).toMatch(/✗ bad: failed in \d+ms: exit code 3/);
    expect(r.stdout).toContain("after: blocked: upstream stage 'bad' did not complete");
    expect(r.stdout).toMatch(/4 stages: 2 ran, 0 up to date, 1 failed, 1 not run in/);
  });
});

describe('parsed-file cache', () => {
  it('a same-size edit of pipeline.yaml or params.yaml right after a run is seen', async () => {
    repo = chainRepo();
    await repro();
    repo.write({ 'params.yaml': 'train:\n  lr: 0.1\n  epochs: 4\n' });
    expect((await statusJson()).stages.train!.reasons.map((r) => r.text)).toEqual(['param changed: train.epochs: 3 -> 4 (params.yaml)']);
    repo.write({ 'pipeline.yaml': CHAIN.replace('wc -c', 'wc -m') });
    expect((await statusJson()).stages.evaluate!.reasons.map((r) => r.kind)).toEqual(['cmd-changed', 'upstream-stale']);
  });

  it('errors found after a cached parse still point at file:line:column', async () => {
    repo = chainRepo();
    await repro();
    repo.rm('in.txt');
    const r = await repo.run(['status']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("pipeline.yaml:2:3: error: dep 'in.txt' of stage 'prepare' does not exist");
  });
});
