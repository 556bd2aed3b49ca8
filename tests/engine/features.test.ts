import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { TempRepo, ran, reproJson as reproRun } from '../helpers.js';

let repo: TempRepo;
afterEach(() => repo?.cleanup());

const reproJson = (args: string[] = []) => reproRun(repo, args);

describe('templating', () => {
  it('foreach over a list and a dict names stages stage@key, and a group name targets them all', async () => {
    repo = new TempRepo({
      'pipeline.yaml': `stages:
  clean:
    foreach: [raw1, raw2]
    do:
      cmd: echo \${item} > \${item}.cln
      outs: ["\${item}.cln"]
  build:
    foreach:
      uk: {epochs: 3}
      us: {epochs: 10}
    do:
      cmd: echo \${key} \${item.epochs} > model-\${key}.txt
      outs: ["model-\${key}.txt"]
  rows:
    foreach: \${models}
    do:
      cmd: echo \${item.name} > row-\${item.name}.txt
      outs: ["row-\${item.name}.txt"]
`,
      'params.yaml': 'models:\n  - name: a\n  - name: b\n',
    });
    const r = await reproJson();
    expect(Object.keys(r.states)).toEqual(['clean@raw1', 'clean@raw2', 'build@uk', 'build@us', 'rows@0', 'rows@1']);
    expect(repo.read('model-us.txt')).toBe('us 10\n');
    expect(repo.read('row-b.txt')).toBe('b\n');
    expect((await reproJson(['-f', 'build'])).ran).toEqual(['build@uk', 'build@us']);
    expect((await reproJson(['-f', 'clean@raw2'])).ran).toEqual(['clean@raw2']);
  });

  it('matrix expands to the cartesian product', async () => {
    repo = new TempRepo({
      'pipeline.yaml': `stages:
  train:
    matrix:
      model: [lr, xgb]
      seed: [1, 2]
    cmd: echo \${item.model} \${item.seed} > out-\${item.model}-\${item.seed}.txt
    outs: ["out-\${item.model}-\${item.seed}.txt"]
`,
    });
    const r = await reproJson();
    expect(Object.keys(r.states)).toEqual(['train@lr-1', 'train@lr-2', 'train@xgb-1', 'train@xgb-2']);
    expect(repo.read('out-xgb-2.txt')).toBe('xgb 2\n');
  });

  it('vars (inline and files), nested keys, list indexes, dict unpacking and escaping', async () => {
    repo = new TempRepo({
      'pipeline.yaml': `vars:
  - extra.yaml
  - local: {name: world}
stages:
  a:
    cmd: echo \${local.name} \${sizes[1]} \${opts} '\\\${literal}' > a.txt
    outs: [a.txt]
`,
      'params.yaml': 'opts:\n  lr: 0.5\n  fast: true\n',
      'extra.yaml': 'sizes: [1, 2, 3]\n',
    });
    const r = await reproJson();
    expect(r.code).toBe(0);
    expect(repo.read('a.txt')).toBe('world 2 --lr 0.5 --fast ${literal}\n');
    const lock = YAML.parse(repo.read('pipeline.lock'));
    // values from params files are tracked; inline vars are not
    expect(lock.stages.a.params).toEqual({ 'extra.yaml': { 'sizes[1]': 2 }, 'params.yaml': { opts: { fast: true, lr: 0.5 } } });
  });

  it('params from another file and a whole file', async () => {
    repo = new TempRepo({
      'pipeline.yaml': `stages:
  a:
    cmd: echo a > a.txt
    params:
      - other.yaml: [x.y]
      - whole.yaml:
    outs: [a.txt]
`,
      'other.yaml': 'x:\n  y: 1\n  z: 2\n',
      'whole.yaml': 'p: 1\nq: [1, 2]\n',
    });
    await reproJson();
    repo.write({ 'other.yaml': 'x:\n  y: 1\n  z: 3\n' });
    expect((await reproJson()).ran).toEqual([]); // x.z is not tracked
    repo.write({ 'whole.yaml': 'p: 1\nq: [1, 2]\nr: new\n' });
    const st = JSON.parse((await repo.run(['status', '--json'])).stdout);
    expect(st.stages.a.reasons.map((x: { text: string }) => x.text)).toEqual(['param added: r = "new" (whole.yaml)']);
  });
});

describe('deps', () => {
  it('a directory dep is a manifest: any file change inside makes the stage stale', async () => {
    repo = new TempRepo({
      'pipeline.yaml': 'stages:\n  a:\n    cmd: ls -R data > listing.txt\n    deps: [data]\n    outs: [listing.txt]\n',
      'data/x.txt': '1',
      'data/sub/y.txt': '2',
    });
    await reproJson();
    const lock = YAML.parse(repo.read('pipeline.lock'));
    expect(lock.stages.a.deps[0]).toMatchObject({ path: 'data', nfiles: 2, size: 2 });
    expect(lock.stages.a.deps[0].xxh64).toMatch(/\.dir$/);
    repo.write({ 'data/sub/y.txt': '3' });
    expect((await reproJson()).ran).toEqual(['a']);
    repo.write({ 'data/sub/z.txt': 'new' });
    expect((await reproJson()).ran).toEqual(['a']);
  });

  it('a glob dep tracks the set of matching files', async () => {
    repo = new TempRepo({
      'pipeline.yaml': "stages:\n  a:\n    cmd: cat src/*.txt > all.txt\n    deps: ['src/*.txt']\n    outs: [all.txt]\n",
      'src/a.txt': 'a',
      'src/b.md': 'b',
    });
    await reproJson();
    repo.write({ 'src/b.md': 'changed' });
    expect((await reproJson()).ran).toEqual([]);
    repo.write({ 'src/c.txt': 'c' });
    expect((await reproJson()).ran).toEqual(['a']);
  });

  it('symlinks in deps are followed', async () => {
    repo = new TempRepo({
      'pipeline.yaml': 'stages:\n  a:\n    cmd: cat link.txt > out.txt\n    deps: [link.txt]\n    outs: [out.txt]\n',
      'real/target.txt': 'v1',
    });
    fs.symlinkSync(path.join(repo.dir, 'real/target.txt'), repo.path('link.txt'));
    await reproJson();
    repo.write({ 'real/target.txt': 'v2' });
    expect((await reproJson()).ran).toEqual(['a']);
    expect(repo.read('out.txt')).toBe('v2');
  });

  it('a dep outside the repository is allowed and tracked', async () => {
    repo = new TempRepo({
      'proj/pipeline.yaml': 'stages:\n  a:\n    cmd: cat ../ext.txt > out.txt\n    deps: [../ext.txt]\n    outs: [out.txt]\n',
      'ext.txt': 'e1',
    });
    const cwd = repo.path('proj');
    expect((await repo.run(['repro'], { cwd })).code).toBe(0);
    repo.write({ 'ext.txt': 'e2' });
    const r = await repo.run(['repro', '--json'], { cwd });
    expect(ran(r.stdout)).toEqual(['a']);
  });

  it('the stat cache does not hide a change that keeps the size', async () => {
    repo = new TempRepo({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: cat in.txt > out.txt\n    deps: [in.txt]\n    outs: [out.txt]\n', 'in.txt': 'aaaa' });
    // Old enough to be remembered: a file changed (by ctime, which utimes cannot set back) within the last
    // moments is read again anyway, and nothing would be cached to hide the change.
    await new Promise((r) => setTimeout(r, 150));
    await reproJson();
    expect(fs.existsSync(repo.path('.lockstep/stat-cache.bin'))).toBe(true);
    repo.write({ 'in.txt': 'bbbb' });
    expect((await reproJson()).ran).toEqual(['a']);
  });
});

describe('stage options', () => {
  it('frozen stages never run; always_changed stages always do', async () => {
    repo = new TempRepo({
      'pipeline.yaml': `stages:
  ice: {cmd: echo x > ice.txt, outs: [ice.txt], frozen: true}
  fire: {cmd: date +%N > fire.txt, outs: [fire.txt], always_changed: true}
`,
    });
    const r = await reproJson();
    expect(r.states).toEqual({ ice: 'frozen', fire: 'done' });
    expect(repo.exists('ice.txt')).toBe(false);
    expect((await reproJson()).states).toEqual({ ice: 'frozen', fire: 'done' });
  });

  it('wdir: cmd runs there and paths are relative to it', async () => {
    repo = new TempRepo({
      'pipeline.yaml': 'stages:\n  a:\n    wdir: sub\n    cmd: cat in.txt > out.txt\n    deps: [in.txt]\n    outs: [out.txt]\n',
      'sub/in.txt': 'w',
    });
    await reproJson();
    expect(repo.read('sub/out.txt')).toBe('w');
    expect(YAML.parse(repo.read('pipeline.lock')).stages.a.outs[0].path).toBe('sub/out.txt');
  });

  it('cmd as a list runs each command in order and stops at the first failure', async () => {
    repo = new TempRepo({ 'pipeline.yaml': 'stages:\n  a:\n    cmd:\n      - echo 1 > o.txt\n      - "false"\n      - echo 3 >> o.txt\n    outs: [o.txt]\n' });
    const r = await reproJson();
    expect(r.states.a).toBe('failed');
    expect(repo.read('o.txt')).toBe('1\n');
  });
});

describe('TypeScript stage modules', () => {
  it('run in their own process with a typed context; their imports are bundled', async () => {
    repo = new TempRepo({
      'pipeline.yaml': `stages:
  gen:
    module: src/gen.ts
    deps: [src, in.txt]
    params: [gen.n, gen.label]
    outs: [out/result.json]
    metrics:
      - out/metrics.json: {cache: false}
`,
      'params.yaml': 'gen:\n  n: 3\n  label: hi\n  unused: 9\n',
      'in.txt': 'input',
      'src/util.ts': 'export function repeat(s: string, n: number): string { return s.repeat(n); }\n',
      'src/gen.ts': `import fs from 'node:fs';
import { repeat } from './util.js';
interface Ctx { stage: string; root: string; params: { gen: { n: number; label: string } }; deps: string[]; outs: string[]; metrics: string[]; resolve(p: string): string; log(m: string): void }
export default async function (ctx: Ctx): Promise<void> {
  const n: number = ctx.params.gen.n;
  ctx.log('running ' + ctx.stage);
  fs.writeFileSync(ctx.resolve(ctx.outs[0]!), JSON.stringify({ s: repeat(ctx.params.gen.label, n), deps: ctx.deps, outs: ctx.outs, params: ctx.params, cwd: process.cwd() === ctx.root }));
  fs.writeFileSync(ctx.resolve(ctx.metrics[0]!), JSON.stringify({ n }));
}
`,
    });
    const r = await repo.run(['repro']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toContain('running gen');
    const out = JSON.parse(repo.read('out/result.json'));
    expect(out).toEqual({
      s: 'hihihi',
      deps: ['src', 'in.txt'],
      outs: ['out/result.json', 'out/metrics.json'],
      params: { gen: { n: 3, label: 'hi' } },
      cwd: true,
    });
    // editing an imported file reruns the stage and uses the new code
    repo.write({ 'src/util.ts': 'export function repeat(s: string, n: number): string { return [s, n].join("*"); }\n' });
    expect((await reproJson()).ran).toEqual(['gen']);
    expect(JSON.parse(repo.read('out/result.json')).s).toBe('hi*3');
  });

  it('a throwing module fails the stage with its message and the line in the user code', async () => {
    repo = new TempRepo({
      'pipeline.yaml': 'stages:\n  bad:\n    module: bad.ts\n    outs: [x.txt]\n',
      'bad.ts': 'export default function () {\n  const n: number = 1;\n  throw new Error(`no data for ${n}`);\n}\n',
    });
    const r = await repo.run(['repro']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('error: no data for 1');
    expect(r.stdout).toMatch(/bad\.ts:3:\d+/);
    expect(r.stdout).toContain('bad: failed');
  });

  it("a module's own Error subclass is an anticipated failure: its message, without the code location", async () => {
    repo = new TempRepo({
      'pipeline.yaml': 'stages:\n  fetch:\n    module: fetch.ts\n    outs: [x.txt]\n',
      'fetch.ts':
        'class FetchError extends Error {}\nexport default function () {\n  throw new FetchError("cannot download x: point fetch at a local copy");\n}\n',
    });
    const r = await repo.run(['repro']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('error: cannot download x: point fetch at a local copy');
    expect(r.stdout).not.toMatch(/fetch\.ts:\d+|\n\s+at /);
    expect(r.stdout).toContain('fetch: failed');
    // A TypeError is the language's own: a bug, shown with its line.
    repo.write({ 'fetch.ts': 'export default function () {\n  const o: any = undefined;\n  return o.field;\n}\n' });
    const bug = await repo.run(['repro']);
    expect(bug.code).toBe(1);
    expect(bug.stdout).toMatch(/error: Cannot read properties of undefined[^\n]*\n\s+at .*fetch\.ts:3:\d+/);
  });

  it('a module without a default export, a missing module and a syntax error get clear errors', async () => {
    repo = new TempRepo({
      'pipeline.yaml':
        'stages:\n  a:\n    module: a.ts\n    outs: [a.txt]\n  b:\n    module: nope.ts\n    outs: [b.txt]\n  c:\n    module: c.ts\n    outs: [c.txt]\n',
      'a.ts': 'export const x = 1;\n',
      'c.ts': 'export default function ( {\n',
    });
    const r = await repo.run(['repro', '-k']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('stage module a.ts must export a default function');
    expect(r.stdout).toContain("stage module 'nope.ts' does not exist");
    expect(r.stdout).toMatch(/c: failed.*cannot compile stage module/);
  });
});

describe('dag', () => {
  const P = `stages:
  a: {cmd: echo > a.txt, outs: [a.txt]}
  b: {cmd: cp a.txt b.txt, deps: [a.txt], outs: [b.txt]}
  c: {cmd: cp a.txt c.txt, deps: [a.txt], outs: [c.txt]}
  d: {cmd: cat b.txt c.txt > d.txt, deps: [b.txt, c.txt], outs: [d.txt]}
`;
  it('prints text, mermaid and dot', async () => {
    repo = new TempRepo({ 'pipeline.yaml': P });
    expect((await repo.run(['dag'])).stdout).toBe('a\nb  <-  a\nc  <-  a\nd  <-  b, c');
    const m = (await repo.run(['dag', '--mermaid'])).stdout;
    expect(m).toContain('flowchart TD');
    expect(m).toContain('s0 --> s1');
    expect(m).toContain('s2 --> s3');
    const d = (await repo.run(['dag', '--dot'])).stdout;
    expect(d).toContain('"b" -> "d";');
    expect((await repo.run(['dag', 'b'])).stdout).toBe('a\nb  <-  a');
  });
});

describe('output into a closed pipe', () => {
  it('`lockstep status | head -1` ends quietly: no internal error, exit 0', async () => {
    // ~80 KB of status output: more than a pipe holds, so writes after head exits hit EPIPE.
    const stages = Array.from({ length: 3000 }, (_, i) => `  s${i}:\n    cmd: echo ${i}\n`).join('');
    repo = new TempRepo({ 'pipeline.yaml': `stages:\n${stages}` });
    const { execa } = await import('execa');
    const r = await execa('bash', ['-c', `set -o pipefail; node ${JSON.stringify(path.resolve('bin/lockstep.js'))} status | head -1`], {
      cwd: repo.dir,
      reject: false,
    });
    expect(r.stdout).toBe('s0:');
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
  });
});

describe('pre-started module hosts', () => {
  it('a chain of module stages runs each in its own wdir with its own env, and leaves no host process behind', async () => {
    const mod = (n: number) => `import fs from 'node:fs';
export default function (ctx: { stage: string; resolve(p: string): string }) {
  fs.writeFileSync(ctx.resolve('o${n}.json'), JSON.stringify({ cwd: process.cwd(), stage: process.env.LOCKSTEP_STAGE, ctx: ctx.stage }));
}
`;
    const files: Record<string, string> = {};
    let yaml = 'stages:\n';
    for (let i = 1; i <= 4; i++) {
      files[`w${i}/m.ts`] = mod(i);
      yaml += `  s${i}:\n    wdir: w${i}\n    module: m.ts\n    outs: [o${i}.json]\n${i > 1 ? `    deps: [../w${i - 1}/o${i - 1}.json]\n` : ''}`;
    }
    repo = new TempRepo({ ...files, 'pipeline.yaml': yaml });
    const r = await repo.run(['repro']);
    expect(r.code, r.stderr).toBe(0);
    for (let i = 1; i <= 4; i++) {
      const o = JSON.parse(repo.read(`w${i}/o${i}.json`));
      expect(o).toEqual({ cwd: fs.realpathSync(repo.path(`w${i}`)), stage: `s${i}`, ctx: `s${i}` });
    }
    await new Promise((res) => setTimeout(res, 300));
    const hosts = fs
      .readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return (
            fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('module-host') && fs.readlinkSync(`/proc/${p}/cwd`).startsWith(fs.realpathSync(repo.dir))
          );
        } catch {
          return false;
        }
      });
    expect(hosts).toEqual([]);
  });
});
