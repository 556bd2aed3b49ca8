import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { median, runCli, tempDir, timeCli, writeFiles, type Row } from './util.js';
import { startNginxDav, type RunningServer } from './servers.js';
import { ObjectStore } from '../runner/cache/object-store.js';
import { hashFile } from '../runner/hash/xxhash.js';

/**
 * Cache and remotes: push and pull throughput for many small files and for
 * one large file, against a folder remote and a real nginx WebDAV remote; and
 * what a run-cache restore costs against running the stage again.
 */
const SMALL_FILES = 1000;
const SMALL_SIZE = 4096;
const BIG_MB = 256;

const PIPELINE = `stages:
  small:
    cmd: >-
      node -e "const fs=require('fs'); fs.mkdirSync('small'); for (let i=0;i<${SMALL_FILES};i++) fs.writeFileSync('small/f'+i, require('crypto').randomBytes(${SMALL_SIZE}))"
    outs: [small]
  big:
    cmd: >-
      node -e "const fs=require('fs'); const fd=fs.openSync('big.bin','w'); const b=require('crypto').randomBytes(1<<20); for (let i=0;i<${BIG_MB};i++) { b[0]=i; fs.writeSync(fd,b); } fs.closeSync(fd)"
    outs: [big.bin]
`;

interface Remote {
  readonly url: string;
  reset(): void;
  stop(): Promise<void>;
}

async function remotes(): Promise<{ name: string; make: () => Promise<Remote> }[]> {
  return [
    {
      name: 'folder',
      make: async () => {
        const dir = tempDir('remote');
        return {
          url: dir,
          reset: () => fs.rmSync(path.join(dir, 'files'), { recursive: true, force: true }),
          stop: async () => fs.rmSync(dir, { recursive: true, force: true }),
        };
      },
    },
    {
      name: 'http (nginx WebDAV)',
      make: async () => {
        const s: RunningServer = await startNginxDav();
        return { url: s.url, reset: () => fs.rmSync(path.join(s.dataDir, 'files'), { recursive: true, force: true }), stop: () => s.stop() };
      },
    },
  ];
}

export async function benchCache(): Promise<Row[]> {
  const rows: Row[] = [];
  const a = tempDir('cache-a');
  const b = tempDir('cache-b');
  try {
    writeFiles(a, { 'pipeline.yaml': PIPELINE });
    runCli(a, ['repro']);
    writeFiles(b, { 'pipeline.yaml': PIPELINE, 'pipeline.lock': fs.readFileSync(path.join(a, 'pipeline.lock'), 'utf8') });
    for (const kind of await remotes()) {
      const remote = await kind.make();
      try {
        for (const dir of [a, b]) writeFiles(dir, { '.lockstep/config': `remotes:\n  origin:\n    url: ${remote.url}\n` });
        for (const [target, label, per] of [
          ['small', `${SMALL_FILES} × ${SMALL_SIZE / 1024} KiB files`, 'files'],
          ['big', `one ${BIG_MB} MiB file`, 'MB'],
        ] as const) {
          const push: number[] = [];
          const pull: number[] = [];
          for (let i = 0; i < 3; i++) {
            remote.reset();
            push.push(timeCli(a, ['push', target, '--no-run-cache']));
            fs.rmSync(path.join(b, '.lockstep', 'cache'), { recursive: true, force: true });
            fs.rmSync(path.join(b, target === 'small' ? 'small' : 'big.bin'), { recursive: true, force: true });
            pull.push(timeCli(b, ['pull', target, '--no-run-cache']));
          }
          const amount = per === 'files' ? SMALL_FILES : BIG_MB;
          rows.push({ name: `push ${label} to ${kind.name}`, value: amount / (median(push) / 1000), unit: `${per}/s`, note: `${median(push).toFixed(0)} ms` });
          rows.push({
            name: `pull ${label} from ${kind.name}`,
            value: amount / (median(pull) / 1000),
            unit: `${per}/s`,
            note: `${median(pull).toFixed(0)} ms, with checkout`,
          });
        }
      } finally {
        await remote.stop();
      }
    }
  } finally {
    fs.rmSync(a, { recursive: true, force: true });
    fs.rmSync(b, { recursive: true, force: true });
  }
  rows.push(...benchRestore());
  rows.push(...(await benchRestoreVerify()));
  return rows;
}

/**
 * What verifying each object on restore costs. The copy step alone, in
 * process, before (a plain kernel copy, as restores were) and after (copied
 * while hashed; hardlink: hashed, then linked), for one 256 MiB object and
 * 1,000 small ones; then `lockstep checkout` end to end, which verifies.
 */
async function benchRestoreVerify(): Promise<Row[]> {
  const dir = tempDir('verify');
  const rows: Row[] = [];
  try {
    const store = new ObjectStore(path.join(dir, 'cache'));
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    const add = async (name: string, data: Buffer | ((fd: number) => void)): Promise<string> => {
      const file = path.join(src, name);
      if (Buffer.isBuffer(data)) fs.writeFileSync(file, data);
      else {
        const fd = fs.openSync(file, 'w');
        data(fd);
        fs.closeSync(fd);
      }
      const { hash } = await hashFile(file);
      await store.addFile(file, hash, 'copy', name);
      return hash;
    };
    const big = [
      await add('big', (fd) => {
        const b = crypto.randomBytes(1 << 20);
        for (let i = 0; i < BIG_MB; i++) {
          b[0] = i;
          fs.writeSync(fd, b);
        }
      }),
    ];
    const small: string[] = [];
    for (let i = 0; i < SMALL_FILES; i++) small.push(await add(`s${i}`, crypto.randomBytes(SMALL_SIZE)));
    fs.rmSync(src, { recursive: true });

    const out = path.join(dir, 'out');
    const restoreAll = async (hashes: string[], how: 'plain copy' | 'verified copy' | 'plain hardlink' | 'verified hardlink'): Promise<number> => {
      fs.rmSync(out, { recursive: true, force: true });
      fs.mkdirSync(out);
      const t0 = performance.now();
      for (const h of hashes) {
        const dest = path.join(out, h);
        const tmp = `${dest}.tmp`;
        if (how === 'plain copy') {
          fs.copyFileSync(store.pathOf(h), tmp);
          fs.chmodSync(tmp, 0o644);
        } else if (how === 'plain hardlink') fs.linkSync(store.pathOf(h), tmp);
        else await store.materialize(h, tmp, how === 'verified copy' ? 'copy' : 'hardlink');
        fs.renameSync(tmp, dest);
      }
      return performance.now() - t0;
    };
    for (const [hashes, label, amount, unit] of [
      [big, `one ${BIG_MB} MiB object`, BIG_MB, 'MB/s'],
      [small, `${SMALL_FILES} × ${SMALL_SIZE / 1024} KiB objects`, SMALL_FILES, 'files/s'],
    ] as const) {
      for (const mode of ['copy', 'hardlink'] as const) {
        const before: number[] = [];
        const after: number[] = [];
        // Alternate which goes first: the second of a pair pays for the first's writeback.
        for (let i = 0; i < 6; i++) {
          if (i % 2) after.push(await restoreAll([...hashes], `verified ${mode}`));
          before.push(await restoreAll([...hashes], `plain ${mode}`));
          if (!(i % 2)) after.push(await restoreAll([...hashes], `verified ${mode}`));
        }
        const b = median(before);
        const a = median(after);
        rows.push({ name: `restore ${label} (${mode}), before: no verification`, value: amount / (b / 1000), unit, note: `${b.toFixed(0)} ms` });
        rows.push({
          name: `restore ${label} (${mode}), after: verified`,
          value: amount / (a / 1000),
          unit,
          note: `${a.toFixed(0)} ms (${a >= b ? '+' : ''}${(a - b).toFixed(0)} ms${b >= 1 ? `, ${a >= b ? '+' : ''}${(((a - b) / b) * 100).toFixed(0)}%` : ''})`,
        });
      }
    }
    fs.rmSync(out, { recursive: true, force: true });

    // End to end: checkout (which verifies every object it restores).
    const repo = path.join(dir, 'repo');
    writeFiles(repo, { 'pipeline.yaml': PIPELINE });
    runCli(repo, ['repro']);
    for (const [target, label, amount, unit] of [
      ['small', `${SMALL_FILES} × ${SMALL_SIZE / 1024} KiB files`, SMALL_FILES, 'files/s'],
      ['big.bin', `one ${BIG_MB} MiB file`, BIG_MB, 'MB/s'],
    ] as const) {
      const times: number[] = [];
      for (let i = 0; i < 3; i++) {
        fs.rmSync(path.join(repo, target), { recursive: true, force: true });
        times.push(timeCli(repo, ['checkout', target]));
      }
      rows.push({
        name: `lockstep checkout ${label} (verified, end to end)`,
        value: amount / (median(times) / 1000),
        unit,
        note: `${median(times).toFixed(0)} ms`,
      });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** A stand-in for the train stage (a CPU-bound second of work) run, then restored from the run-cache. */
function benchRestore(): Row[] {
  const dir = tempDir('restore');
  try {
    writeFiles(dir, {
      'params.yaml': 'lr: 1\n',
      'pipeline.yaml': `stages:
  train:
    cmd: >-
      node -e "const t=Date.now(); let x=0; while (Date.now()-t < 2000) x+=Math.sqrt(x+\${lr}); const fs=require('fs'); fs.mkdirSync('model',{recursive:true}); fs.writeFileSync('model/weights.bin', require('crypto').randomBytes(8<<20)); fs.writeFileSync('model/meta.json', JSON.stringify({lr: \${lr}}))"
    params: [lr]
    outs: [model]
`,
    });
    const run: number[] = [];
    const restore: number[] = [];
    for (let i = 0; i < 3; i++) {
      writeFiles(dir, { 'params.yaml': `lr: ${i + 10}\n` });
      run.push(timeCli(dir, ['repro']));
      writeFiles(dir, { 'params.yaml': 'lr: 1\n' });
      timeCli(dir, ['repro']);
      writeFiles(dir, { 'params.yaml': `lr: ${i + 10}\n` });
      restore.push(timeCli(dir, ['repro'])); // seen before: restored
    }
    return [
      { name: 'train-like stage (2 s of work, 8 MiB model): run', value: median(run), unit: 'ms' },
      { name: 'the same stage restored from the run-cache', value: median(restore), unit: 'ms', note: `${(median(run) / median(restore)).toFixed(0)}× faster` },
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
