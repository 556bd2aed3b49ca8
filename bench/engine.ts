import fs from 'node:fs';
import path from 'node:path';
import { hashFile } from '../runner/hash/xxhash.js';
import { BEFORE, interleave, LOCKSTEP, median, REPO, runCli, tempDir, timeCli, timeCmd, writeFiles, type Row } from './util.js';

const RUNS = 9;

function chain(n: number): string {
  let y = 'stages:\n';
  for (let i = 0; i < n; i++) {
    const dep = i === 0 ? 'in.txt' : `s${i - 1}.txt`;
    y += `  s${i}:\n    cmd: cp ${dep} s${i}.txt\n    deps: [${dep}]\n    outs: [s${i}.txt]\n`;
  }
  return y;
}

/** `n` independent chains of `len` stages each. */
function chains(n: number, len: number): string {
  let y = 'stages:\n';
  for (let c = 0; c < n; c++) {
    for (let i = 0; i < len; i++) {
      const dep = i === 0 ? 'in.txt' : `c${c}_${i - 1}.txt`;
      y += `  c${c}_${i}:\n    cmd: cp ${dep} c${c}_${i}.txt\n    deps: [${dep}]\n    outs: [c${c}_${i}.txt]\n`;
    }
  }
  return y;
}

export async function benchEngine(): Promise<Row[]> {
  const rows: Row[] = [];

  {
    const dir = tempDir('chain4');
    writeFiles(dir, { 'pipeline.yaml': chain(4), 'in.txt': 'x\n' });
    runCli(dir, ['repro']);
    timeCli(dir, ['repro']);
    // Node 20 reads NODE_EXTRA_CA_CERTS at every start (about 40 ms here): where it is set, also measure without it.
    const noCa = process.env.NODE_EXTRA_CA_CERTS ? { ...process.env, NODE_EXTRA_CA_CERTS: '' } : undefined;
    const m = interleave(RUNS, {
      now: () => timeCli(dir, ['repro']),
      ...(BEFORE ? { before: () => timeCli(dir, ['repro'], BEFORE) } : {}),
      node: () => timeCmd(dir, process.execPath, ['-e', '0']),
      ...(noCa
        ? { nowNoCa: () => timeCmd(dir, process.execPath, [LOCKSTEP, 'repro'], noCa), nodeNoCa: () => timeCmd(dir, process.execPath, ['-e', '0'], noCa) }
        : {}),
    });
    rows.push({ name: 'no-op repro, 4-stage chain (wall)', value: m.now, unit: 'ms', target: '<= 115 ms', ok: m.now <= 115, note: before(m) });
    rows.push({ name: '  (for scale: `node -e 0` on this machine)', value: m.node, unit: 'ms' });
    if (m.nowNoCa !== undefined && m.nodeNoCa !== undefined) {
      rows.push({ name: '  same no-op without NODE_EXTRA_CA_CERTS', value: m.nowNoCa, unit: 'ms', note: `(\`node -e 0\` so: ${m.nodeNoCa.toFixed(0)} ms)` });
    }
    rows.push(...userTyped(dir));
    fs.rmSync(dir, { recursive: true, force: true });
  }

  {
    // The issue's shape: 20 independent chains of 10 `cp` stages (their cold run is in the 'stages' section).
    const dir = tempDir('chains200');
    writeFiles(dir, { 'pipeline.yaml': chains(20, 10), 'in.txt': 'x\n' });
    runCli(dir, ['repro', '-j', '2']);
    if (BEFORE) runCli(dir, ['repro'], BEFORE);
    timeCli(dir, ['repro']);
    const noop = interleave(RUNS, { now: () => timeCli(dir, ['repro']), ...(BEFORE ? { before: () => timeCli(dir, ['repro'], BEFORE) } : {}) });
    rows.push({
      name: '200 stages (20 chains of 10), no-op (wall)',
      value: noop.now,
      unit: 'ms',
      target: '<= 150 ms',
      ok: noop.now <= 150,
      note: before(noop),
    });
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
    const gbps = (256 * 1024 * 1024) / 1e9 / (median(xs) / 1000);
    rows.push({ name: 'first-hash throughput, 256 MiB file (xxh64, page cache)', value: gbps, unit: 'GB/s', target: '>= 1 GB/s', ok: gbps >= 1 });
    fs.rmSync(dir, { recursive: true, force: true });
  }

  {
    const dir = tempDir('module');
    writeFiles(dir, {
      'pipeline.yaml': 'stages:\n  mod:\n    module: noop.ts\n    outs: [m.txt]\n  sh:\n    cmd: touch s.txt\n    outs: [s.txt]\n',
      'noop.ts':
        "import fs from 'node:fs';\nexport default function (ctx: { resolve(p: string): string }): void { fs.writeFileSync(ctx.resolve('m.txt'), ''); }\n",
    });
    runCli(dir, ['repro']);
    const stageMs = (name: string) => {
      const doc = JSON.parse(runCli(dir, ['repro', '-f', '-s', name, '--json'])) as { stages: { durationMs: number }[] };
      return doc.stages[0]!.durationMs;
    };
    const mod = median(Array.from({ length: RUNS }, () => stageMs('mod')));
    const sh = median(Array.from({ length: RUNS }, () => stageMs('sh')));
    rows.push({
      name: 'trivial TypeScript-module stage: stage time',
      value: mod,
      unit: 'ms',
      target: '< 100 ms',
      ok: mod < 100,
      note: `(a shell \`touch\` stage: ${sh.toFixed(0)} ms)`,
    });
    fs.rmSync(dir, { recursive: true, force: true });
  }

  {
    // In a chain, hosts are booted ahead of the module stages still to come: the per-stage cost after the first.
    const dir = tempDir('modchain');
    const n = 6;
    const files: Record<string, string> = { 'pipeline.yaml': 'stages:\n' };
    for (let i = 0; i < n; i++) {
      files[`m${i}.ts`] =
        `import fs from 'node:fs';\nexport default function (ctx: { resolve(p: string): string }): void { fs.writeFileSync(ctx.resolve('o${i}.txt'), '${i}'); }\n`;
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

  // Cold runs (200 as 20 chains of 10, 100 and 1,000 flat, 8 × 1 s at -j 8) are the 'stages' section;
  // the 10,000-file folder is the 'tree' section.
  return rows;
}

function before(m: { before?: number }): string | undefined {
  return m.before === undefined ? undefined : `(before: ${m.before.toFixed(0)} ms)`;
}

/**
 * The same no-op as the user types it. `npx`/`npm exec` find the project's own bin (run from a clone:
 * `--prefix` stands for being in it); `npm run` goes through a package.json script; PATH is the
 * project's bin/ on PATH (`lockstep repro`).
 */
function userTyped(dir: string): Row[] {
  const npm = (args: string[]) => () => timeCmd(dir, 'npm', args);
  const pkg = path.join(dir, 'package.json');
  fs.writeFileSync(pkg, JSON.stringify({ name: 'bench-user', private: true, scripts: { repro: `node ${LOCKSTEP} repro` } }));
  const env = { ...process.env, PATH: `${path.join(REPO, 'bin')}${path.delimiter}${process.env.PATH ?? ''}` };
  let m;
  try {
    m = interleave(5, {
      npx: npm(['exec', '--yes=false', '--prefix', REPO, '--', 'lockstep', 'repro']),
      run: npm(['run', '--silent', 'repro']),
      path: () => timeCmd(dir, 'lockstep', ['repro'], env),
      node: () => timeCli(dir, ['repro']),
    });
  } catch (e) {
    return [{ name: '  as typed: (not measured)', value: 0, unit: 'ms', note: `(${(e as Error).message.split('\n')[0]})` }];
  } finally {
    fs.rmSync(pkg);
  }
  return [
    { name: '  as typed: `npx lockstep repro` (npm exec)', value: m.npx, unit: 'ms' },
    { name: '  as typed: `npm run repro` (a package.json script)', value: m.run, unit: 'ms' },
    { name: '  as typed: `lockstep repro` (bin/ on PATH)', value: m.path, unit: 'ms' },
    { name: '  as typed: `node bin/lockstep.js repro`', value: m.node, unit: 'ms' },
  ];
}
