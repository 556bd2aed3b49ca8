import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { TempRepo } from '../helpers.js';
import { openWorkspace } from '../../runner/workspace.js';
import { makeTempWorkspace } from '../../runner/exp/workspace-copy.js';

const PIPELINE = ['stages:', '  make:', '    cmd: mkdir -p out/sub && echo a > out/a.txt && echo b > out/sub/b.txt', '    outs: [out]', ''].join('\n');

describe('makeTempWorkspace (unit)', () => {
  const cleanup: string[] = [];
  afterEach(() => {
    for (const d of cleanup.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  const copyOf = async (repo: TempRepo): Promise<string> => {
    const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-copytest-')), 'copy');
    cleanup.push(path.dirname(dir));
    await makeTempWorkspace(openWorkspace(repo.dir, { checkDeps: false }), dir);
    return dir;
  };

  it('copies tracked and untracked files and the recorded outputs (folders walked), with their modes and symlinks, and nothing of .git or .lockstep', async () => {
    const repo = new TempRepo({
      'pipeline.yaml': PIPELINE,
      'src/deep/x.txt': 'x',
      'run.sh': '#!/bin/sh\n',
      '.gitignore': 'out\nignored.txt\n',
      'ignored.txt': 'i',
    });
    cleanup.push(repo.dir);
    fs.chmodSync(repo.path('run.sh'), 0o755);
    fs.symlinkSync('deep/x.txt', repo.path('src/link'));
    execFileSync('git', ['init', '-q'], { cwd: repo.dir });
    expect((await repo.run(['repro'])).code).toBe(0);
    const dir = await copyOf(repo);
    expect(fs.readFileSync(path.join(dir, 'src/deep/x.txt'), 'utf8')).toBe('x');
    expect(fs.readFileSync(path.join(dir, 'out/sub/b.txt'), 'utf8')).toBe('b\n'); // an output, although git ignores it
    expect(fs.existsSync(path.join(dir, 'ignored.txt'))).toBe(false);
    expect(fs.readlinkSync(path.join(dir, 'src/link'))).toBe('deep/x.txt');
    expect(fs.statSync(path.join(dir, 'run.sh')).mode & 0o777).toBe(0o755);
    expect(fs.existsSync(path.join(dir, '.git'))).toBe(false);
    expect(fs.existsSync(path.join(dir, '.lockstep', 'cache'))).toBe(false);
  });

  it('never shares an inode with the workspace: writing into a copied file in place leaves the original as it was', async () => {
    const repo = new TempRepo({ 'pipeline.yaml': PIPELINE, 'notes.txt': 'original\n' });
    cleanup.push(repo.dir);
    expect((await repo.run(['repro'])).code).toBe(0);
    const dir = await copyOf(repo); // not a git repository: the folder is walked
    fs.appendFileSync(path.join(dir, 'notes.txt'), 'changed\n');
    fs.appendFileSync(path.join(dir, 'out/a.txt'), 'changed\n');
    expect(repo.read('notes.txt')).toBe('original\n');
    expect(repo.read('out/a.txt')).toBe('a\n');
    expect(fs.statSync(path.join(dir, 'notes.txt')).ino).not.toBe(fs.statSync(repo.path('notes.txt')).ino);
  });

  it('refuses a folder that exists already (it is not ours to fill)', async () => {
    const repo = new TempRepo({ 'pipeline.yaml': PIPELINE });
    cleanup.push(repo.dir);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-copytest-'));
    cleanup.push(dir);
    await expect(makeTempWorkspace(openWorkspace(repo.dir, { checkDeps: false }), dir)).rejects.toThrow(/EEXIST/);
  });
});
