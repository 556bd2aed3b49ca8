import fs from 'node:fs';
import { baseImage, buildBase, buildNode, nodeImage, podman, storeSize } from '../tests/container/images.js';
import { repeat, tempDir, timeCli, writeFiles, type Row } from './util.js';

/**
 * What a container costs a stage: a trivial shell stage and a trivial module
 * stage run (`repro -f`) on the host and in a container; and building images:
 * the Debian base (mmdebstrap, cold only: it is cached by recipe hash after),
 * the Node image, and a stage's Containerfile cold (not in the store) and warm
 * (in the store: Lockstep only checks its tag).
 */
export async function benchContainer(): Promise<Row[]> {
  const rows: Row[] = [];
  const base = await baseImage();
  const node = await nodeImage();
  const dir = tempDir('container');
  try {
    writeFiles(dir, {
      'pipeline.yaml': `stages:
  host: {cmd: echo hi > host.txt, outs: [host.txt]}
  boxed: {cmd: echo hi > boxed.txt, outs: [boxed.txt], container: {image: "${base}"}}
  mod-host: {module: m.ts, outs: [mh.txt]}
  mod-boxed: {module: m.ts, outs: [mb.txt], container: {image: "${node}"}}
  built: {cmd: echo hi > built.txt, outs: [built.txt], container: {build: env/Containerfile}}
`,
      'm.ts': `import fs from 'node:fs';\nexport default (ctx: { outs: string[]; resolve(p: string): string }) => fs.writeFileSync(ctx.resolve(ctx.outs[0]!), 'hi');\n`,
      'env/Containerfile': `FROM ${base}\nRUN echo ${Date.now()} > /etc/bench\n`,
    });
    const stage = (name: string) => repeat(7, () => timeCli(dir, ['repro', '-f', '-s', name]));
    const host = stage('host');
    const boxed = stage('boxed');
    rows.push({ name: 'trivial shell stage on the host (repro -f, wall)', value: host.median, unit: 'ms' });
    rows.push({ name: 'trivial shell stage in a container', value: boxed.median, unit: 'ms', note: `+${(boxed.median - host.median).toFixed(0)} ms` });
    const mh = stage('mod-host');
    const mb = stage('mod-boxed');
    rows.push({ name: 'trivial module stage on the host', value: mh.median, unit: 'ms' });
    rows.push({ name: 'trivial module stage in a container', value: mb.median, unit: 'ms', note: `+${(mb.median - mh.median).toFixed(0)} ms` });
    rows.push({ name: "stage's Containerfile, cold (build + run)", value: timeCli(dir, ['repro', '-s', 'built']), unit: 'ms' });
    rows.push({ name: "stage's Containerfile, warm (in the store, repro -f)", value: timeCli(dir, ['repro', '-f', '-s', 'built']), unit: 'ms' });
    // The built image is the bench's own (its Containerfile has a timestamp): leave nothing behind.
    const built = /id: xxh64:(\w+)/.exec(fs.readFileSync(`${dir}/pipeline.lock`, 'utf8'))?.[1];
    if (built) podman(['rmi', `lockstep-build:${built}`]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const timed = async (f: () => Promise<unknown>) => {
    const t0 = performance.now();
    await f();
    return performance.now() - t0;
  };
  const tmpTag = `lockstep-bench-image:${process.pid}`;
  try {
    rows.push({ name: 'Node image from the host node (FROM scratch), cold', value: await timed(() => buildNode(tmpTag)), unit: 'ms' });
    podman(['rmi', tmpTag]);
    rows.push({ name: 'Debian base image (mmdebstrap | podman import), cold', value: await timed(() => buildBase(tmpTag)), unit: 'ms' });
  } finally {
    podman(['rmi', tmpTag]);
  }
  rows.push({ name: 'base image, warm (in the store by recipe hash)', value: await timed(() => baseImage()), unit: 'ms' });
  rows.push({ name: `podman store size: ${storeSize()}`, value: 0, unit: '' });
  return rows;
}
