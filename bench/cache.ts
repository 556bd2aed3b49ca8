import fs from 'node:fs';
import path from 'node:path';
import { median, runCli, tempDir, timeCli, writeFiles, type Row } from './util.js';
import { startNginxDav, type RunningServer } from './servers.js';

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
        return { url: dir, reset: () => fs.rmSync(path.join(dir, 'files'), { recursive: true, force: true }), stop: async () => fs.rmSync(dir, { recursive: true, force: true }) };
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
          rows.push({ name: `pull ${label} from ${kind.name}`, value: amount / (median(pull) / 1000), unit: `${per}/s`, note: `${median(pull).toFixed(0)} ms, with checkout` });
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
