import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { LOCKSTEP, TempRepo, expectOneError, type CliResult } from '../helpers.js';

/**
 * Nothing a pipeline declares may make Lockstep write outside the repository
 * or into its own state: paths are judged by where they resolve, not by how
 * they read. Every test runs the real CLI on a temporary repository that sits
 * next to an "outside" folder standing for the rest of the user's disk.
 */
let repo: TempRepo;
let outside: string;
afterEach(() => {
  repo?.cleanup();
  if (outside) fs.rmSync(outside, { recursive: true, force: true });
});

function setup(files: Record<string, string>): void {
  repo = new TempRepo(files);
  outside = `${repo.dir}-outside`;
  fs.mkdirSync(path.join(outside, 'd'), { recursive: true });
  fs.writeFileSync(path.join(outside, 'd', 'precious.txt'), 'keep me\n');
  fs.writeFileSync(path.join(outside, 'file.txt'), 'keep me too\n');
}

/** The CLI with a deadline: a hang shows as a failure (code -1), not as a stuck test run. */
async function runWithin(args: string[], ms: number): Promise<CliResult> {
  const r = await execa(process.execPath, [LOCKSTEP, ...args], { cwd: repo.dir, env: { NO_COLOR: '1' }, reject: false, stdin: 'ignore', timeout: ms });
  return { code: r.timedOut ? -1 : (r.exitCode ?? -1), stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** `mk` runs `mkCmd` (which makes `link`), then `use` writes its output under `link/d`. */
function linkPipeline(mkCmd: string): string {
  return [
    'stages:',
    '  mk:',
    `    cmd: ${mkCmd} && echo > made.txt`,
    '    outs: [made.txt]',
    '  use:',
    '    cmd: mkdir -p link/d && echo new > link/d/x',
    '    deps: [made.txt]',
    '    outs: [link/d]',
    '',
  ].join('\n');
}

describe('outputs and wdir that resolve outside the repository through a symlink', () => {
  it('an out link/d with link → ../outside is refused before anything is deleted', async () => {
    setup({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: mkdir -p link/d && echo new > link/d/x\n    outs: [link/d]\n' });
    fs.symlinkSync(outside, repo.path('link'));
    const r = await repo.run(['repro']);
    expectOneError(r, /^pipeline\.yaml:4:12: error: output 'link\/d' is unsafe/, /outside the repository/);
    expect(r.stderr).toMatch(/hint: .*allow_symlinked/);
    expect(fs.readFileSync(path.join(outside, 'd', 'precious.txt'), 'utf8')).toBe('keep me\n');
    expect(fs.existsSync(path.join(outside, 'd', 'x'))).toBe(false);
  });

  it('an out link/file that would overwrite a file outside is refused', async () => {
    setup({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: echo overwritten > link/file.txt\n    outs: [link/file.txt]\n' });
    fs.symlinkSync(outside, repo.path('link'));
    expectOneError(await repo.run(['repro']), /output 'link\/file\.txt' is unsafe/);
    expect(fs.readFileSync(path.join(outside, 'file.txt'), 'utf8')).toBe('keep me too\n');
  });

  it('an out that is itself a dangling link to outside is refused (writing would create the target)', async () => {
    setup({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: echo made > o.txt\n    outs: [o.txt]\n' });
    fs.symlinkSync(path.join(outside, 'new.txt'), repo.path('o.txt'));
    expectOneError(await repo.run(['repro']), /output 'o\.txt' is unsafe/);
    expect(fs.existsSync(path.join(outside, 'new.txt'))).toBe(false);
  });

  it('wdir: link runs nothing outside', async () => {
    setup({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: echo ran > here.txt\n    wdir: link\n' });
    fs.symlinkSync(outside, repo.path('link'));
    expectOneError(await repo.run(['repro']), /^pipeline\.yaml:4:11: error: 'wdir' link is unsafe/);
    expect(fs.existsSync(path.join(outside, 'here.txt'))).toBe(false);
  });

  it('an absolute wdir is refused', async () => {
    setup({});
    repo.write({ 'pipeline.yaml': `stages:\n  a:\n    cmd: echo ran > here.txt\n    wdir: ${outside}\n` });
    expectOneError(await repo.run(['repro']), /^pipeline\.yaml:4:11: error: 'wdir' must be a path inside the repository, not an absolute path/);
    expect(fs.existsSync(path.join(outside, 'here.txt'))).toBe(false);
  });

  it('an out that resolves into .lockstep through a link is refused', async () => {
    setup({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: echo x > state/config\n    outs: [state/config]\n' });
    fs.mkdirSync(repo.path('.lockstep'));
    fs.symlinkSync('.lockstep', repo.path('state'));
    expectOneError(await repo.run(['repro']), /output 'state\/config' is unsafe: it resolves through a symlink into \.lockstep\//);
  });

  it('a link made by an upstream stage is caught right before the downstream stage deletes its output', async () => {
    setup({});
    repo.write({ 'pipeline.yaml': linkPipeline(`ln -s ${outside} link`) });
    const r = await repo.run(['repro']);
    expect(r.code, r.stderr).toBe(1); // 'use' fails; 'mk' ran
    expect(r.stdout).toMatch(/use: failed.*refusing to write output 'link\/d': it resolves through a symlink to .*outside/);
    expect(fs.readFileSync(path.join(outside, 'd', 'precious.txt'), 'utf8')).toBe('keep me\n');
    expect(fs.existsSync(path.join(outside, 'd', 'x'))).toBe(false);
  });

  it('a restore from the cache re-checks right before writing (the link appeared during this run)', async () => {
    setup({ 'pipeline.yaml': linkPipeline('mkdir -p link') });
    expect((await repo.run(['repro'])).code).toBe(0);
    repo.rm('link');
    // Now the upstream stage makes a link instead; 'use' is then stale (its output looks different) and restorable.
    repo.write({ 'pipeline.yaml': linkPipeline(`ln -s ${outside} link`) });
    const r = await repo.run(['repro']);
    expect(r.code, r.stderr).toBe(1); // the stage fails, as when it would run
    expect(r.stdout).toMatch(/use: failed.*refusing to write output 'link\/d': it resolves through a symlink to .*outside/);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(fs.readFileSync(path.join(outside, 'd', 'precious.txt'), 'utf8')).toBe('keep me\n');
    expect(fs.existsSync(path.join(outside, 'd', 'x'))).toBe(false);
  });

  it('checkout refuses to write through a folder replaced by a link after the run', async () => {
    setup({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: mkdir -p data && echo v1 > data/out.txt\n    outs: [data/out.txt]\n' });
    expect((await repo.run(['repro'])).code).toBe(0);
    repo.rm('data');
    fs.symlinkSync(outside, repo.path('data'));
    for (const cmd of [['checkout'], ['checkout', '-f'], ['repro']]) {
      expectOneError(await repo.run(cmd), /output 'data\/out\.txt' is unsafe/);
      expect(fs.existsSync(path.join(outside, 'out.txt'))).toBe(false);
    }
  });

  it('a symlinked data disk declared in allow_symlinked: is used on purpose', async () => {
    setup({
      'pipeline.yaml': 'stages:\n  a:\n    cmd: mkdir -p disk/d && echo new > disk/d/x\n    outs: [disk/d]\n',
      '.lockstep/config': 'allow_symlinked: [disk]\n',
    });
    fs.symlinkSync(outside, repo.path('disk'));
    const r = await repo.run(['repro']);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(outside, 'd', 'x'), 'utf8')).toBe('new\n');
    // …and checkout writes there too.
    fs.rmSync(path.join(outside, 'd'), { recursive: true });
    expect((await repo.run(['checkout'])).code).toBe(0);
    expect(fs.readFileSync(path.join(outside, 'd', 'x'), 'utf8')).toBe('new\n');
  });

  it('allow_symlinked never opens .git or .lockstep, and takes only repository paths', async () => {
    setup({
      'pipeline.yaml': 'stages:\n  a:\n    cmd: echo x > s/o\n    outs: [s/o]\n',
      '.lockstep/config': 'allow_symlinked: [s]\n',
    });
    fs.symlinkSync('.lockstep', repo.path('s'));
    expectOneError(await repo.run(['repro']), /into \.lockstep\//);
    repo.write({ '.lockstep/config': 'allow_symlinked: [../elsewhere]\n' });
    expectOneError(await repo.run(['repro']), /^\.lockstep\/config:1:\d+: error: allow_symlinked entry '\.\.\/elsewhere' must be a path inside the repository/);
  });
});

describe('files the pipeline itself reads are never outputs', () => {
  const cases: [string, string, RegExp][] = [
    [
      'params.yaml',
      'stages:\n  a:\n    cmd: echo lr 2 > params.yaml\n    params: [lr]\n    outs: [params.yaml]\n',
      /^pipeline\.yaml:5:12: error: 'params\.yaml' cannot be an output: it is the params file 'params\.yaml'/,
    ],
    [
      'a folder holding a params file',
      'stages:\n  a:\n    cmd: echo\n    params: [{conf/p.yaml: [lr]}]\n  b:\n    cmd: mkdir conf\n    outs: [conf]\n',
      /^pipeline\.yaml:7:12: error: 'conf' cannot be an output: it holds the params file 'conf\/p\.yaml'/,
    ],
    [
      'a vars file',
      'vars: [v.yaml]\nstages:\n  a:\n    cmd: echo ${vlr} > v.yaml\n    outs: [v.yaml]\n',
      /^pipeline\.yaml:5:12: error: 'v\.yaml' cannot be an output: it is the params file 'v\.yaml'/,
    ],
    ['pipeline.yaml', 'stages:\n  a:\n    cmd: echo\n    outs: [pipeline.yaml]\n', /^pipeline\.yaml:4:12: error: 'pipeline\.yaml' cannot be an output/],
    [
      'pipeline.lock',
      'stages:\n  a:\n    cmd: echo\n    metrics: [./pipeline.lock]\n',
      /^pipeline\.yaml:4:15: error: '\.\/pipeline\.lock' cannot be an output/,
    ],
    ['a file in .lockstep', 'stages:\n  a:\n    cmd: echo\n    outs: [.lockstep/config]\n', /'\.lockstep\/config' cannot be an output/],
    ['a file in .git', 'stages:\n  a:\n    cmd: echo\n    wdir: sub\n    outs: [../.git/HEAD]\n', /'\.\.\/\.git\/HEAD' cannot be an output/],
  ];
  for (const [what, pipeline, want] of cases) {
    it(`${what} as an output is refused with its location, and nothing runs`, async () => {
      setup({ 'pipeline.yaml': pipeline, 'params.yaml': 'lr: 1\n', 'conf/p.yaml': 'lr: 1\n', 'v.yaml': 'vlr: 1\n', 'sub/.keep': '' });
      const before = repo.read('params.yaml');
      expectOneError(await repo.run(['repro']), want);
      expect(repo.read('params.yaml')).toBe(before);
      expect(repo.exists('v.yaml') && repo.exists('conf/p.yaml') && repo.exists('pipeline.yaml')).toBe(true);
    });
  }

  it('an output that is a link to params.yaml is refused too', async () => {
    setup({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: echo lr 2 > p\n    params: [lr]\n    outs: [p]\n', 'params.yaml': 'lr: 1\n' });
    fs.symlinkSync('params.yaml', repo.path('p'));
    expectOneError(await repo.run(['repro']), /'p' cannot be an output: through a symlink it is 'params\.yaml'/);
    expect(repo.read('params.yaml')).toBe('lr: 1\n');
  });
});

describe('special files and link cycles in deps', () => {
  it('a FIFO dep is refused by name at once, and nothing blocks', async () => {
    setup({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: cat fifo\n    deps: [fifo]\n' });
    execFileSync('mkfifo', [repo.path('fifo')]);
    const t0 = Date.now();
    for (const cmd of [['repro'], ['status']]) {
      const r = await runWithin(cmd, 15_000);
      expectOneError(r, /^pipeline\.yaml:2:3: error: dep 'fifo' of stage 'a' is a FIFO \(named pipe\)/);
    }
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('a FIFO inside a directory dep is not content, and does not block', async () => {
    setup({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: echo ok\n    deps: [d]\n', 'd/x.txt': '1\n' });
    execFileSync('mkfifo', [repo.path('d/fifo')]);
    const r = await runWithin(['repro'], 15_000);
    expect(r.code, r.stderr).toBe(0);
    expect(repo.read('pipeline.lock')).toMatch(/nfiles: 1\n/);
  });

  it('SIGTERM during a long hash stops repro promptly with 143', async () => {
    setup({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: echo ran\n    deps: [big.bin]\n' });
    // Sparse: takes no disk, but reading it costs seconds (about 8 s per GiB here).
    fs.writeFileSync(repo.path('big.bin'), '');
    fs.truncateSync(repo.path('big.bin'), 1024 ** 3);
    const child = repo.spawn(['repro']);
    await new Promise((r) => setTimeout(r, 1200));
    const t0 = Date.now();
    child.kill('SIGTERM');
    const r = await child;
    expect(Date.now() - t0).toBeLessThan(2500);
    expect(r.exitCode).toBe(143);
    expect(r.stdout).toMatch(/a: interrupted/);
    expect(repo.exists('pipeline.lock')).toBe(false);
  });

  it('a directory dep with a link to its parent hashes its own files only, and is then up to date', async () => {
    setup({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: echo ok\n    deps: [d]\n', 'd/x.txt': '1\n', 'd/sub/y.txt': '2\n' });
    execFileSync('git', ['init', '-q', repo.dir]);
    fs.symlinkSync('..', repo.path('d/up'));
    fs.symlinkSync('../..', repo.path('d/sub/top'));
    fs.symlinkSync('../../.git', repo.path('d/sub/git'));
    expect((await repo.run(['repro'])).code).toBe(0);
    expect(repo.read('pipeline.lock')).toMatch(/path: d\n\s+xxh64: [0-9a-f]{16}\.dir\n\s+size: 4\n\s+nfiles: 2\n/);
    const st = await repo.run(['status']);
    expect(st.stdout.trim()).toBe('Pipeline is up to date.');
    expect((await repo.run(['repro'])).stdout).toMatch(/a: skipped/);
  });

  it('a dep inside .lockstep (by name or through a link) is refused with its location', async () => {
    setup({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: echo\n    deps: [c]\n  b:\n    cmd: echo\n    deps: [.lockstep/config]\n', '.lockstep/config': '' });
    fs.symlinkSync('.lockstep', repo.path('c'));
    const r = await repo.run(['repro']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^pipeline\.yaml:4:12: error: dep 'c' leads through a symlink inside \.lockstep\//m);
    expect(r.stderr).toMatch(/^pipeline\.yaml:7:12: error: dep '\.lockstep\/config' is inside \.lockstep\//m);
  });

  it('a glob dep neither follows a link cycle nor matches files in .lockstep or .git', async () => {
    setup({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: echo ok\n    deps: ["d/**/*.txt", "**/*.json"]\n', 'd/x.txt': '1\n' });
    execFileSync('git', ['init', '-q', repo.dir]);
    fs.symlinkSync('..', repo.path('d/up'));
    expect((await repo.run(['repro'])).code).toBe(0);
    const lock = repo.read('pipeline.lock');
    expect(lock).toMatch(/path: d\/\*\*\/\*\.txt\n\s+xxh64: \S+\n\s+size: 2\n\s+nfiles: 1\n/);
    expect(lock).toMatch(/path: "\*\*\/\*\.json"\n\s+xxh64: \S+\n\s+size: 0\n\s+nfiles: 0\n/); // .lockstep/*.json are not deps
    expect((await repo.run(['status'])).stdout.trim()).toBe('Pipeline is up to date.');
  });

  it('links between sibling folders that point back at each other end', async () => {
    setup({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: echo ok\n    deps: [d]\n', 'd/a/1.txt': '1\n', 'd/b/2.txt': '2\n' });
    fs.symlinkSync('../b', repo.path('d/a/to-b'));
    fs.symlinkSync('../a', repo.path('d/b/to-a'));
    const r = await runWithin(['repro'], 20_000);
    expect(r.code, r.stderr).toBe(0);
    // a/1, a/to-b/2, b/2, b/to-a/1: each folder once along any path, no endless descent.
    expect(repo.read('pipeline.lock')).toMatch(/nfiles: 4\n/);
  });
});

describe('resolveReal and PathGuard (in process)', () => {
  it('follows every link on the way, a dangling one at the end too, and .. after a link physically', async () => {
    const { resolveReal } = await import('../../runner/containment.js');
    setup({ 'in/f.txt': 'x' });
    const root = fs.realpathSync(repo.dir);
    const out = fs.realpathSync(outside);
    fs.symlinkSync(outside, repo.path('link'));
    fs.symlinkSync(path.join(outside, 'nope', 'x'), repo.path('dangling'));
    fs.symlinkSync('link/d', repo.path('chain'));
    fs.symlinkSync('loop2', repo.path('loop1'));
    fs.symlinkSync('loop1', repo.path('loop2'));
    expect(resolveReal(repo.path('in/f.txt'))).toBe(path.join(root, 'in/f.txt'));
    expect(resolveReal(repo.path('in/new/deeper'))).toBe(path.join(root, 'in/new/deeper'));
    expect(resolveReal(repo.path('link/d/x'))).toBe(path.join(out, 'd/x'));
    expect(resolveReal(repo.path('dangling'))).toBe(path.join(out, 'nope/x'));
    expect(resolveReal(repo.path('chain/precious.txt'))).toBe(path.join(out, 'd/precious.txt'));
    // `link/..` is the parent of where link leads, as the kernel sees it: not the repository.
    expect(resolveReal(repo.dir + '/link/../x')).toBe(path.join(path.dirname(out), 'x'));
    expect(() => resolveReal(repo.path('loop1/x'))).not.toThrow();
  });

  it('allows only what allow_symlinked lists, and never the repository state', async () => {
    const { PathGuard } = await import('../../runner/containment.js');
    setup({});
    fs.mkdirSync(repo.path('.lockstep'));
    fs.symlinkSync(outside, repo.path('disk'));
    fs.symlinkSync(outside, repo.path('other'));
    fs.symlinkSync('.lockstep', repo.path('state'));
    const g = new PathGuard(repo.dir, ['disk']);
    expect(g.problem('disk/d/x')).toBeUndefined();
    expect(g.problem('disk')).toBeUndefined();
    expect(g.problem('plain/new.txt')).toBeUndefined();
    expect(g.problem('other/x')).toMatch(/outside the repository/);
    expect(g.problem('state/x')).toMatch(/into \.lockstep\//);
    expect(new PathGuard(repo.dir, ['state']).problem('state/x')).toMatch(/into \.lockstep\//);
  });
});
