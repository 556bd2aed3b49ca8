import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildModule, shareBuilds } from '../../runner/module-build.js';

/** A repository holding one module stage that imports a helper, built once. */
async function builtRepo(): Promise<{ root: string; state: string; output: string }> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-share-'));
  fs.mkdirSync(path.join(root, 'stages', 'lib'), { recursive: true });
  fs.writeFileSync(path.join(root, 'stages', 'lib', 'help.ts'), 'export const two = (): number => 2;\n');
  fs.writeFileSync(path.join(root, 'stages', 'run.ts'), "import { two } from './lib/help.js';\nexport default () => two();\n");
  const state = path.join(root, '.lockstep');
  // Sources written within a timestamp tick of a build are not remembered by their signature (nor shared):
  // let them settle first, as a workspace's sources have long before an experiment.
  await new Promise((r) => setTimeout(r, 150));
  const output = await buildModule(root, state, 'stages/run.ts');
  // A marker no build would write: finding it in the copy's bundle proves the copy did not bundle again.
  fs.appendFileSync(output, '\n// shared-marker\n');
  return { root, state, output };
}

/** The repository's sources copied elsewhere (new inodes and mtimes, as an experiment's copy has). */
function copyOf(root: string): string {
  const to = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-share-copy-'));
  fs.cpSync(path.join(root, 'stages'), path.join(to, 'stages'), { recursive: true });
  return to;
}

describe('shareBuilds (unit)', () => {
  const cleanup: string[] = [];
  afterEach(() => {
    for (const d of cleanup.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  it("gives a copy the workspace's build, fresh there: the copy's own build request does not bundle again", async () => {
    const a = await builtRepo();
    const b = copyOf(a.root);
    cleanup.push(a.root, b);
    await shareBuilds(a.root, a.state, b, path.join(b, '.lockstep'));
    const out = await buildModule(b, path.join(b, '.lockstep'), 'stages/run.ts');
    expect(out.startsWith(b)).toBe(true);
    expect(fs.readFileSync(out, 'utf8')).toContain('shared-marker');
  });

  it('leaves out a build whose source changed in the workspace after it was built (the copy builds its own)', async () => {
    const a = await builtRepo();
    fs.writeFileSync(path.join(a.root, 'stages', 'lib', 'help.ts'), 'export const two = (): number => 3;\n');
    const b = copyOf(a.root);
    cleanup.push(a.root, b);
    await shareBuilds(a.root, a.state, b, path.join(b, '.lockstep'));
    const out = await buildModule(b, path.join(b, '.lockstep'), 'stages/run.ts');
    const text = fs.readFileSync(out, 'utf8');
    expect(text).not.toContain('shared-marker');
    expect(text).toContain('3');
  });

  it('leaves out a build whose copied source differs from the workspace (another size)', async () => {
    const a = await builtRepo();
    const b = copyOf(a.root);
    cleanup.push(a.root, b);
    fs.writeFileSync(path.join(b, 'stages', 'lib', 'help.ts'), 'export const two = (): number => 2 + 0;\n');
    await shareBuilds(a.root, a.state, b, path.join(b, '.lockstep'));
    expect(fs.readFileSync(await buildModule(b, path.join(b, '.lockstep'), 'stages/run.ts'), 'utf8')).not.toContain('shared-marker');
  });

  it('does nothing when the workspace has built nothing yet', async () => {
    const from = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-share-'));
    const to = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-share-copy-'));
    cleanup.push(from, to);
    await shareBuilds(from, path.join(from, '.lockstep'), to, path.join(to, '.lockstep'));
    expect(fs.existsSync(path.join(to, '.lockstep'))).toBe(false);
  });
});
