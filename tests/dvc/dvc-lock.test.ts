import crypto from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { TempRepo, ran, statesOf } from '../helpers.js';
import { dvcTreeMd5, isTextBlock } from '../../runner/hash/dvc-md5.js';

// Hashes here are computed independently of runner/hash/dvc-md5.ts, spelled out as DVC does:
// md5 of the bytes (DVC 3), of the bytes with CRLF → LF for text (DVC 2), and for a directory
// md5 of Python's json.dumps(sorted [{"md5", "relpath"}], sort_keys=True) + ".dir".
const md5 = (s: string | Buffer) => crypto.createHash('md5').update(s).digest('hex');
const dirMd5 = (files: [string, string][]) => md5('[' + files.map(([rel, h]) => `{"md5": "${h}", "relpath": "${rel}"}`).join(', ') + ']') + '.dir';

let repo: TempRepo;
afterEach(() => repo?.cleanup());

const DVC_YAML = `stages:
  prepare:
    cmd: mkdir -p data/prepared && cp data/raw.txt data/prepared/train.txt && tr a-z A-Z < data/raw.txt > data/prepared/test.txt
    deps:
      - data/raw.txt
      - src/prepare.sh
    params:
      - prepare.split
    outs:
      - data/prepared
  train:
    cmd: cat ../data/prepared/train.txt > model.txt && echo '{"acc":0.9}' > metrics.json
    wdir: model
    deps:
      - ../data/prepared
      - ../src/train.sh
    params:
      - ../params.yaml:
          - train
    outs:
      - model.txt
    metrics:
      - metrics.json:
          cache: false
`;

const RAW = 'alpha\nbeta\n';
function dvcRepo(): TempRepo {
  const r = new TempRepo({
    'dvc.yaml': DVC_YAML,
    'params.yaml': 'prepare:\n  split: 0.2\ntrain:\n  lr: 0.1\n  epochs: 3\n',
    'data/raw.txt': RAW,
    'src/prepare.sh': 'echo prepare\n',
    'src/train.sh': 'echo train\n',
    // What `dvc repro` left in the workspace.
    'data/prepared/train.txt': RAW,
    'data/prepared/test.txt': RAW.toUpperCase(),
    'model/model.txt': RAW,
    'model/metrics.json': '{"acc":0.9}\n',
  });
  const prepared = dirMd5([
    ['test.txt', md5(RAW.toUpperCase())],
    ['train.txt', md5(RAW)],
  ]);
  const entry = (p: string, h: string, size: number, extra: Record<string, unknown> = {}) => ({ path: p, hash: 'md5', md5: h, size, ...extra });
  const lock = {
    schema: '2.0',
    stages: {
      prepare: {
        cmd: DVC_YAML.split('\n')[2]!.replace('    cmd: ', ''),
        deps: [entry('data/raw.txt', md5(RAW), RAW.length), entry('src/prepare.sh', md5('echo prepare\n'), 13)],
        params: { 'params.yaml': { 'prepare.split': 0.2 } },
        outs: [entry('data/prepared', prepared, 2 * RAW.length, { nfiles: 2 })],
      },
      train: {
        cmd: `cat ../data/prepared/train.txt > model.txt && echo '{"acc":0.9}' > metrics.json`,
        deps: [entry('../data/prepared', prepared, 2 * RAW.length, { nfiles: 2 }), entry('../src/train.sh', md5('echo train\n'), 11)],
        params: { '../params.yaml': { train: { lr: 0.1, epochs: 3 } } },
        outs: [entry('metrics.json', md5('{"acc":0.9}\n'), 12), entry('model.txt', md5(RAW), RAW.length)],
      },
    },
  };
  r.write({ 'dvc.lock': YAML.stringify(lock) });
  return r;
}

describe('dvc.lock from a DVC 3 repository', () => {
  it('counts stages whose md5s still match as up to date, then writes pipeline.lock in our format', async () => {
    repo = dvcRepo();
    const st = await repo.run(['status']);
    expect(st.stdout.trim(), st.stderr).toBe('Pipeline is up to date.');
    expect(repo.exists('pipeline.lock')).toBe(false); // status writes nothing

    const r = await repo.run(['repro', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(statesOf(r.stdout)).toEqual({ prepare: 'skipped', train: 'skipped' });
    const lock = YAML.parse(repo.read('pipeline.lock'));
    expect(Object.keys(lock.stages)).toEqual(['prepare', 'train']);
    expect(lock.stages.train.deps[0]).toMatchObject({ path: 'data/prepared', nfiles: 2 });
    expect(lock.stages.train.deps[0].xxh64).toMatch(/^[0-9a-f]{16}\.dir$/);
    // dvc.lock is left alone; from now on pipeline.lock rules, and nothing reruns.
    expect((await repo.run(['repro', '--json'])).stdout).not.toContain('"done"');
    expect(repo.read('dvc.lock')).toContain('hash: md5');
  });

  it('editing one dep reruns exactly its stage', async () => {
    repo = dvcRepo();
    repo.write({ 'src/train.sh': 'echo train v2\n' });
    const st = await repo.run(['status']);
    expect(st.stdout).toBe('train:\n    dep changed: src/train.sh');
    const r = await repo.run(['repro', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(ran(r.stdout)).toEqual(['train']);
    expect(statesOf(r.stdout).prepare).toBe('skipped');
  });

  it('a changed param, a changed cmd and a modified output are each reported as DVC would', async () => {
    repo = dvcRepo();
    repo.write({ 'params.yaml': 'prepare:\n  split: 0.3\ntrain:\n  lr: 0.1\n  epochs: 3\n', 'model/model.txt': 'tampered\n' });
    const st = await repo.run(['status']);
    expect(st.stdout).toContain('prepare:\n    param changed: prepare.split: 0.2 -> 0.3 (params.yaml)');
    expect(st.stdout).toContain('train:\n    out modified: model/model.txt');
    repo.write({ 'dvc.yaml': DVC_YAML.replace('> model.txt', '>  model.txt') });
    expect((await repo.run(['status', 'train'])).stdout).toContain('cmd changed');
  });

  it('a corrupt dvc.lock is one clear line, exit 2', async () => {
    repo = dvcRepo();
    repo.write({ 'dvc.lock': 'schema: "1.0"\nstages: {}\n' });
    const r = await repo.run(['status']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')[0]).toBe(`dvc.lock: error: dvc.lock is not valid: schema "1.0" is not supported (only '2.0', written by DVC 2 and 3)`);
  });
});

describe('dvc.lock from DVC 2 (no hash field: md5 of text with CRLF turned into LF)', () => {
  it('matches a CRLF text file and a binary file with CRs as DVC 2 hashed them', async () => {
    const crlf = 'a,b\r\n1,2\r\n';
    const bin = Buffer.from([0, 1, 13, 10, 2]);
    repo = new TempRepo({
      'dvc.yaml': 'stages:\n  copy:\n    cmd: cp in.csv out.csv\n    deps: [in.csv, blob.bin]\n    outs: [out.csv]\n',
      'in.csv': crlf,
      'out.csv': crlf,
    });
    repo.write({ 'blob.bin': bin as unknown as string });
    const lf = md5(crlf.replace(/\r\n/g, '\n'));
    repo.write({
      'dvc.lock': YAML.stringify({
        schema: '2.0',
        stages: {
          copy: {
            cmd: 'cp in.csv out.csv',
            deps: [
              { path: 'in.csv', md5: lf, size: 10 },
              { path: 'blob.bin', md5: md5(bin), size: 5 },
            ],
            outs: [{ path: 'out.csv', md5: lf, size: 10 }],
          },
        },
      }),
    });
    const st = await repo.run(['status']);
    expect(st.stdout.trim(), st.stderr).toBe('Pipeline is up to date.');
  });
});

describe('our pipeline.lock', () => {
  it('has no YAML aliases and no dotted copies of keys inside a tracked section', async () => {
    repo = new TempRepo({
      'pipeline.yaml': `stages:
  a:
    cmd: echo \${train.lr} > a.txt
    params: [train]
    outs: [a.txt]
  b:
    cmd: echo b > b.txt
    params: [train]
    outs: [b.txt]
`,
      'params.yaml': 'train:\n  lr: 0.1\n  layers: [1, 2]\n',
    });
    expect((await repo.run(['repro'])).code).toBe(0);
    const text = repo.read('pipeline.lock');
    expect(text).not.toMatch(/[&*]a\d/);
    expect(text).not.toContain('train.lr');
    const lock = YAML.parse(text);
    expect(lock.stages.a.params).toEqual({ 'params.yaml': { train: { lr: 0.1, layers: [1, 2] } } });
    expect(lock.stages.b.params).toEqual(lock.stages.a.params);
  });
});

describe('DVC hashing (unit)', () => {
  it('hashes a directory listing exactly as json.dumps(sort_keys=True) does, non-ASCII escaped', () => {
    const h = 'd41d8cd98f00b204e9800998ecf8427e';
    expect(
      dvcTreeMd5([
        { relpath: 'b/x.txt', md5: h },
        { relpath: 'a.txt', md5: h },
      ]),
    ).toBe(md5(`[{"md5": "${h}", "relpath": "a.txt"}, {"md5": "${h}", "relpath": "b/x.txt"}]`) + '.dir');
    // The hash DVC gives an empty directory, well known from DVC repositories: md5 of "[]".
    expect(dvcTreeMd5([])).toBe('d751713988987e9331980363e24189ce.dir');
    expect(dvcTreeMd5([{ relpath: 'café "q".txt', md5: h }])).toBe(md5(`[{"md5": "${h}", "relpath": "caf\\u00e9 \\"q\\".txt"}]`) + '.dir');
  });

  it('tells text from binary as dvc-data does', () => {
    expect(isTextBlock(Buffer.from('plain text\r\n'))).toBe(true);
    expect(isTextBlock(Buffer.from([65, 0, 66]))).toBe(false);
    expect(isTextBlock(Buffer.from([200, 201, 65, 66, 67, 68, 69, 70, 71, 72]))).toBe(true); // 20% non-text
    expect(isTextBlock(Buffer.from([200, 201, 202, 203, 67, 68, 69, 70, 71, 72]))).toBe(false); // 40%
    expect(isTextBlock(Buffer.alloc(0))).toBe(true);
  });
});

describe('a DVC monorepo: dvc.yaml and dvc.lock only in a subfolder', () => {
  it('is found from the repository root, and its dvc.lock (paths relative to its folder) is understood', async () => {
    const text = 'hello\n';
    repo = new TempRepo({
      '.dvc/config': '',
      'proj/dvc.yaml': 'stages:\n  up:\n    cmd: tr a-z A-Z < in.txt > out.txt\n    deps: [in.txt]\n    outs: [out.txt]\n',
      'proj/in.txt': text,
      'proj/out.txt': text.toUpperCase(),
    });
    repo.write({
      'proj/dvc.lock': YAML.stringify({
        schema: '2.0',
        stages: {
          up: {
            cmd: 'tr a-z A-Z < in.txt > out.txt',
            deps: [{ path: 'in.txt', hash: 'md5', md5: md5(text), size: 6 }],
            outs: [{ path: 'out.txt', hash: 'md5', md5: md5(text.toUpperCase()), size: 6 }],
          },
        },
      }),
    });
    const st = await repo.run(['status']);
    expect(st.stdout.trim(), st.stderr).toBe('Pipeline is up to date.');
    const r = await repo.run(['repro', '--json']);
    expect(statesOf(r.stdout)).toEqual({ 'proj/dvc.yaml:up': 'skipped' });
    expect(YAML.parse(repo.read('proj/pipeline.lock')).stages.up.deps[0].path).toBe('in.txt');
    expect(repo.exists('pipeline.lock')).toBe(false);
    repo.write({ 'proj/in.txt': 'changed\n' });
    expect(ran((await repo.run(['repro', '--json'])).stdout)).toEqual(['proj/dvc.yaml:up']);
    expect(repo.read('proj/out.txt')).toBe('CHANGED\n');
  });
});

describe('dvc.lock and interpolated params', () => {
  it('a value only interpolated into cmd is not in dvc.lock (DVC records declared params): still up to date', async () => {
    repo = new TempRepo({
      'dvc.yaml': 'stages:\n  fit:\n    cmd: echo ${train.lr} > out.txt\n    outs: [out.txt]\n',
      'params.yaml': 'train:\n  lr: 0.1\n',
      'out.txt': '0.1\n',
    });
    repo.write({
      'dvc.lock': YAML.stringify({
        schema: '2.0',
        stages: { fit: { cmd: 'echo 0.1 > out.txt', outs: [{ path: 'out.txt', hash: 'md5', md5: md5('0.1\n'), size: 4 }] } },
      }),
    });
    expect((await repo.run(['status'])).stdout.trim()).toBe('Pipeline is up to date.');
    repo.write({ 'params.yaml': 'train:\n  lr: 0.2\n' });
    expect((await repo.run(['status'])).stdout).toBe('fit:\n    cmd changed');
  });
});
