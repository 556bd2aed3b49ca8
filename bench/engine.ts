import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { hashFile } from '../runner/hash/xxhash.js';
import { median, repeat, runCli, tempDir, timeCli, writeFiles, type Row } from './util.js';

const RUNS = 9;

function chain(n: number): string {
  let y = 'stages:\n';
  for (let i = 0; i < n; i++) {
    const dep = i === 0 ? 'in.txt' : `s${i - 1}.txt`;
    y += `  s${i}:\n    cmd: cp ${dep} s${i}.txt\n    deps: [${dep}]\n    outs: [s${i}.txt]\n`;
  }
  return y;
}

/** A layered DAG: `width` stages per layer, each depending on two stages of the layer before. */
function layered(total: number, width: number): string {
  let y = 'stages:\n';
  for (let i = 0; i < total; i++) {
    const layer = Math.floor(i / width);
    const deps = layer === 0 ? ['in.txt'] : [`o${(layer - 1) * width + (i % width)}.txt`, `o${(layer - 1) * width + ((i + 1) % width)}.txt`];
    y += `  s${i}:\n    cmd: cat ${deps.join(' ')} > o${i}.txt\n    deps: [${deps.join(', ')}]\n    outs: [o${i}.txt]\n`;
  }
  return y;
}

function independent(n: number, cmd: (i: number) => string): string {
  let y = 'stages:\n';
  for (let i = 0; i < n; i++) y += `  s${i}:\n    cmd: ${cmd(i)}\n    outs: [o${i}.txt]\n`;
  return y;
}

export async function benchEngine(): Promise<Row[]> {
  const rows: Row[] = [];

  {
    const dir = tempDir('chain4');
    writeFiles(dir, { 'pipeline.yaml': chain(4), 'in.txt': 'x\n' });
    runCli(dir, ['repro']);
    timeCli(dir, ['repro']);
    const r = repeat(RUNS, () => timeCli(dir, ['repro']));
    rows.push({ name: 'no-op repro, 4-stage chain (wall)', value: r.median, unit: 'ms', target: '< 150 ms', ok: r.median < 150 });
    const bare = repeat(RUNS, () => {
      const t0 = performance.now();
      runNode();
      return performance.now() - t0;
    });
    rows.push({ name: '  (for scale: `node -e 0` on this machine)', value: bare.median, unit: 'ms' });
    fs.rmSync(dir, { recursive: true, force: true });
  }

  {
    const dir = tempDir('dag200');
    writeFiles(dir, { 'pipeline.yaml': layered(200, 20), 'in.txt': 'x\n' });
    runCli(dir, ['repro', '-j', '2']);
    timeCli(dir, ['repro']);
    const r = repeat(RUNS, () => timeCli(dir, ['repro']));
    rows.push({ name: 'no-op repro, 200-stage DAG (wall)', value: r.median, unit: 'ms', target: '< 500 ms', ok: r.median < 500 });
    fs.rmSync(dir, { recursive: true, force: true });
  }

  {
    const dir = tempDir('dir10k');
    const files: Record<string, string> = { 'pipeline.yaml': 'stages:\n  count:\n    cmd: ls data | wc -l > count.txt\n    deps: [data]\n    outs: [count.txt]\n' };
    for (let i = 0; i < 10_000; i++) files[`data/d${i % 100}/f${i}.txt`] = `file ${i}\n`;
    writeFiles(dir, files);
    runCli(dir, ['repro']);
    timeCli(dir, ['status']);
    const r = repeat(RUNS, () => timeCli(dir, ['status']));
    rows.push({ name: 're-status, 10,000-file directory dep, stat cache warm', value: r.median, unit: 'ms', target: '< 300 ms', ok: r.median < 300 });
    fs.rmSync(path.join(dir, '.lockstep', 'stat-cache.json'));
    const cold = timeCli(dir, ['status']);
    rows.push({ name: '  (same, stat cache removed: every file read)', value: cold, unit: 'ms' });
    fs.rmSync(dir, { recursive: true, force: true });
  }

  {
    const dir = tempDir('big');
    const file = path.join(dir, 'big.bin');
    const chunk = Buffer.alloc(16 << 20);
    for (let i = 0; i < chunk.length; i += 4096) chunk[i] = i & 0xff;
    const fd = fs.openSync(file, 'w');
    for (let i = 0; i < 16; i++) fs.writeSync(fd, chunk);
    fs.closeSync(fd);
    await hashFile(file); // instantiate wasm, warm the page cache
    const xs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await hashFile(file);
      xs.push(performance.now() - t0);
    }
    const gbps = 256 * 1024 * 1024 / 1e9 / (median(xs) / 1000);
    rows.push({ name: 'first-hash throughput, 256 MiB file (xxh64, page cache)', value: gbps, unit: 'GB/s', target: '>= 1 GB/s', ok: gbps >= 1 });
    fs.rmSync(dir, { recursive: true, force: true });
  }

  {
    const dir = tempDir('module');
    writeFiles(dir, {
      'pipeline.yaml': 'stages:\n  mod:\n    module: noop.ts\n    outs: [m.txt]\n  sh:\n    cmd: touch s.txt\n    outs: [s.txt]\n',
      'noop.ts': "import fs from 'node:fs';\nexport default function (ctx: { resolve(p: string): string }): void { fs.writeFileSync(ctx.resolve('m.txt'), ''); }\n",
    });
    runCli(dir, ['repro']);
    const stageMs = (name: string) => {
      const doc = JSON.parse(runCli(dir, ['repro', '-f', '-s', name, '--json'])) as { stages: { durationMs: number }[] };
      return doc.stages[0]!.durationMs;
    };
    const mod = median(Array.from({ length: RUNS }, () => stageMs('mod')));
    const sh = median(Array.from({ length: RUNS }, () => stageMs('sh')));
    rows.push({ name: 'trivial TypeScript-module stage: stage time', value: mod, unit: 'ms', target: '< 100 ms', ok: mod < 100, note: `(a shell \`touch\` stage: ${sh.toFixed(0)} ms)` });
    fs.rmSync(dir, { recursive: true, force: true });
  }

  {
    // In a chain, hosts are booted ahead of the module stages still to come: the per-stage cost after the first.
    const dir = tempDir('modchain');
    const n = 6;
    const files: Record<string, string> = { 'pipeline.yaml': 'stages:\n' };
    for (let i = 0; i < n; i++) {
      files[`m${i}.ts`] = `import fs from 'node:fs';\nexport default function (ctx: { resolve(p: string): string }): void { fs.writeFileSync(ctx.resolve('o${i}.txt'), '${i}'); }\n`;
      files['pipeline.yaml'] += `  m${i}:\n    module: m${i}.ts\n    outs: [o${i}.txt]\n${i ? `    deps: [o${i - 1}.txt]\n` : ''}`;
    }
    writeFiles(dir, files);
    runCli(dir, ['repro']);
    const later: number[] = [];
    for (let k = 0; k < RUNS; k++) {
      const doc = JSON.parse(runCli(dir, ['repro', '-f', '--json'])) as { stages: { durationMs: number }[] };
      later.push(median(doc.stages.slice(1).map((x) => x.durationMs)));
    }
    const m = median(later);
    rows.push({ name: `trivial module stage in a chain of ${n} (median after the first)`, value: m, unit: 'ms', target: '< 100 ms', ok: m < 100 });
    fs.rmSync(dir, { recursive: true, force: true });
  }

  {
    const dir = tempDir('par8');
    writeFiles(dir, { 'pipeline.yaml': independent(8, (i) => `sh -c 'sleep 1; echo ${i} > o${i}.txt'`) });
    const xs = Array.from({ length: 3 }, () => timeCli(dir, ['repro', '-f', '-j', '8']));
    const m = median(xs);
    rows.push({ name: '8 independent 1-second stages, -j 8 (wall)', value: m, unit: 'ms', target: '< 1500 ms', ok: m < 1500 });
    fs.rmSync(dir, { recursive: true, force: true });
  }

  {
    const cold = (n: number) => {
      const xs: number[] = [];
      for (let k = 0; k < 3; k++) {
        const dir = tempDir(`cold${n}`);
        writeFiles(dir, { 'pipeline.yaml': independent(n, (i) => `echo ${i} > o${i}.txt`) });
        xs.push(timeCli(dir, ['repro', '-j', '2']));
        fs.rmSync(dir, { recursive: true, force: true });
      }
      return median(xs);
    };
    const c100 = cold(100);
    const c1000 = cold(1000);
    rows.push({ name: 'cold run, 100 trivial stages, -j 2 (wall)', value: c100, unit: 'ms', note: `(${(c100 / 100).toFixed(1)} ms/stage)` });
    rows.push({ name: 'cold run, 1,000 trivial stages, -j 2 (wall)', value: c1000, unit: 'ms', note: `(${(c1000 / 1000).toFixed(1)} ms/stage)` });
    rows.push({ name: '  ratio 1,000 / 100', value: c1000 / c100, unit: 'x', target: '<= 10x', ok: c1000 / c100 <= 10 });
  }
  return rows;
}

function runNode(): void {
  spawnSync(process.execPath, ['-e', '0']);
}
