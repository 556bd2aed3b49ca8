/**
 * `npm run bench`: prints medians for the figures the issues name. A benchmark,
 * not a test: it never fails the build, it reports whether each target was met.
 * Pass section names to run only those (engine, stages, pipeline, cache, exp, grid, serve, crash, container, queue, queue-lead).
 */
import os from 'node:os';
import { benchEngine } from './engine.js';
import { benchExpShow, benchGrid } from './exp.js';
import { benchPipeline } from './pipeline.js';
import { benchCache } from './cache.js';
import { benchServe } from './serve.js';
import { benchCrash } from './crash.js';
import { benchContainer } from './container.js';
import { benchQueue, benchQueueLead } from './queue.js';
import { benchTree } from './tree.js';
import { benchStages } from './stages.js';
import { printRows, type Row } from './util.js';

type Section = { name: string; title: string; run: () => Promise<Row[]> };

const sections: Section[] = [
  { name: 'engine', title: 'Engine', run: benchEngine },
  { name: 'tree', title: 'One stage on a 10,000-file folder (100 MiB)', run: benchTree },
  { name: 'stages', title: 'Per-stage cost of a cold run ', run: benchStages },
  { name: 'pipeline', title: 'Lead pipeline on the real data', run: benchPipeline },
  { name: 'cache', title: 'Cache, run-cache and remotes', run: benchCache },
  { name: 'exp', title: 'Experiments', run: benchExpShow },
  { name: 'grid', title: 'Experiment grid on the lead pipeline', run: benchGrid },
  { name: 'serve', title: 'Prediction service', run: benchServe },
  // kill -9 at random moments; LOCKSTEP_CRASH_SEED and LOCKSTEP_CRASH_KILLS (default 100) to replay or shorten.
  { name: 'crash', title: 'Crash sweep (kill -9 at random moments)', run: benchCrash },
  { name: 'container', title: 'Container stages and images (podman)', run: benchContainer },
  { name: 'queue', title: 'Distributed experiments (BullMQ on Redis, local workers, synthetic pipeline)', run: benchQueue },
  { name: 'queue-lead', title: 'Distributed experiments on the lead pipeline (BullMQ on Redis, local workers)', run: benchQueueLead },
];

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  console.log(`# lockstep benchmarks — node ${process.version}, ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? ''}`);
  for (const s of sections) {
    if (only.length && !only.includes(s.name)) continue;
    const t0 = performance.now();
    const rows = await s.run();
    printRows(`${s.title} (${((performance.now() - t0) / 1000).toFixed(0)} s)`, rows);
  }
}

main().catch((e: unknown) => {
  console.error(`bench failed: ${(e as Error).message}`);
  process.exitCode = 1;
});
