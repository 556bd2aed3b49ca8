import { afterEach, describe, expect, it } from 'vitest';
import { ran, TempRepo } from '../helpers.js';

/**
 * A module stage's own code is among its inputs: the files its import closure reads, found by the
 * bundler, with no deps listed by hand. An edit reruns exactly the stages whose code includes the file.
 */
let repo: TempRepo | undefined;
afterEach(() => repo?.cleanup());

const stage = (name: string, imports: string[]) => `import fs from 'node:fs';
${imports.map((m, i) => `import { v as v${i} } from './lib/${m}.js';`).join('\n')}
export default async function (ctx: { resolve(p: string): string }): Promise<void> {
  fs.writeFileSync(ctx.resolve('${name}.txt'), JSON.stringify([${imports.map((_m, i) => `v${i}`).join(', ')}]));
}
`;

function setup(): TempRepo {
  return new TempRepo({
    'pipeline.yaml':
      'stages:\n  a:\n    module: stages/a.ts\n    outs: [a.txt]\n  b:\n    module: stages/b.ts\n    outs: [b.txt]\n  c:\n    module: stages/c.ts\n    deps: [a.txt]\n    outs: [c.txt]\n',
    'stages/a.ts': stage('a', ['shared', 'only-a']),
    'stages/b.ts': stage('b', ['shared']),
    'stages/c.ts': `import fs from 'node:fs';\nexport default async function (ctx: { resolve(p: string): string }): Promise<void> {\n  fs.writeFileSync(ctx.resolve('c.txt'), fs.readFileSync(ctx.resolve('a.txt')));\n}\n`,
    'stages/lib/shared.ts': "export const v = 'shared';\n",
    'stages/lib/only-a.ts': "export const v = 'a1';\n",
    'stages/lib/unused.ts': "export const v = 'nobody imports this';\n",
  });
}

describe('module stages fingerprint their own code', () => {
  it('an edit reruns exactly the stages whose import closure holds the file; status names the file', async () => {
    repo = setup();
    const first = await repo.run(['repro', '--json']);
    expect(first.code, first.stderr).toBe(0);
    expect(ran(first.stdout).sort()).toEqual(['a', 'b', 'c']);
    // The lock records each stage's code with its hash.
    const lock = repo.read('pipeline.lock');
    expect(lock).toMatch(/path: stages\/lib\/only-a\.ts/);
    expect(lock).toMatch(/path: stages\/a\.ts/);

    // Nobody imports it: nothing is stale.
    repo.write({ 'stages/lib/unused.ts': "export const v = 'still nobody';\n" });
    expect((await repo.run(['status'])).stdout).toContain('Pipeline is up to date.');
    expect(ran((await repo.run(['repro', '--json'])).stdout)).toEqual([]);

    // Only a imports it: a reruns; c follows because a's output changed; b does not.
    repo.write({ 'stages/lib/only-a.ts': "export const v = 'a2';\n" });
    const status = await repo.run(['status']);
    expect(status.stdout).toBe('a:\n    dep changed: stages/lib/only-a.ts\nc:\n    upstream stale: a');
    expect(ran((await repo.run(['repro', '--json'])).stdout)).toEqual(['a', 'c']);

    // Both import it: both rerun.
    repo.write({ 'stages/lib/shared.ts': "export const v = 'shared2';\n" });
    expect(ran((await repo.run(['repro', '--json'])).stdout).sort()).toEqual(['a', 'b', 'c']);

    // A new import is a new input; dropping one is a removed input.
    repo.write({ 'stages/b.ts': stage('b', ['shared', 'unused']) });
    expect((await repo.run(['status'])).stdout).toMatch(/^b:(\n\s+dep (added|changed): stages\/(lib\/unused|b)\.ts){2}$/);
    expect(ran((await repo.run(['repro', '--json'])).stdout)).toEqual(['b']);
  });

  it('a module that does not compile makes its stage stale and fails it with the file and line', async () => {
    repo = setup();
    expect((await repo.run(['repro'])).code).toBe(0);
    repo.write({ 'stages/lib/only-a.ts': 'export const v = ;\n' });
    expect((await repo.run(['status'])).stdout).toMatch(/^a:\n/);
    const r = await repo.run(['repro', 'a', '-s']);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/stages\/lib\/only-a\.ts:1:\d+/);
  });
});
