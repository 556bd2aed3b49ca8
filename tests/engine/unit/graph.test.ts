import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { Graph } from '../../../runner/graph.js';
import { UserError } from '../../../runner/errors.js';
import { ParamsFiles } from '../../../runner/config/params.js';
import type { Pipeline } from '../../../runner/config/pipeline.js';
import type { Stage } from '../../../runner/stage.js';

// Stages made by hand (no YAML, no files): the graph is computed from deps and outs alone.
function stage(name: string, deps: string[], outs: string[], extra: Partial<Stage> = {}): Stage {
  return {
    name,
    command: { kind: 'shell', commands: [`make ${name}`] },
    wdir: '.',
    deps: deps.map((p) => ({ path: p, glob: /[*?]/.test(p) })),
    params: [],
    outs: outs.map((p) => ({ path: p, kind: 'out', cache: true, persist: false, push: true })),
    frozen: false,
    alwaysChanged: false,
    location: { file: 'pipeline.yaml', line: 1 + name.length, column: 3 },
    ...extra,
  };
}
function graph(...stages: Stage[]): Graph {
  const root = os.tmpdir();
  const p: Pipeline = {
    root,
    stages: new Map(stages.map((s) => [s.name, s])),
    files: [],
    plots: [],
    paramsFiles: [],
    metricsFiles: [],
    params: new ParamsFiles(root),
  };
  return Graph.analyze(p, { checkDeps: false });
}
function analyzeError(...stages: Stage[]): UserError {
  try {
    graph(...stages);
  } catch (e) {
    if (e instanceof UserError) return e;
    throw e;
  }
  throw new Error('expected a UserError');
}

// prepare → (features, labels) → train → evaluate; report reads train's output directory's file.
const pipeline = () =>
  graph(
    stage('evaluate', ['models/model.bin', 'data/labels.csv'], ['metrics.json']),
    stage('prepare', ['raw.csv'], ['data/clean']),
    stage('features', ['data/clean/part-1.csv'], ['data/features.csv']),
    stage('labels', ['data/clean'], ['data/labels.csv']),
    stage('train', ['data/features.csv', 'data/labels.csv'], ['models']),
    stage('report', ['models/model.bin'], ['report.html']),
  );

describe('Graph', () => {
  it('orders stages so producers come first, ties in declaration order', () => {
    const g = pipeline();
    expect(g.order).toEqual(['prepare', 'features', 'labels', 'train', 'evaluate', 'report']);
    // A dep inside an output directory, and a directory holding an output, are both edges.
    expect([...g.upstream('features')]).toEqual(['prepare']);
    expect([...g.upstream('report')]).toEqual(['train']);
    expect([...g.downstream('prepare')].sort()).toEqual(['features', 'labels']);
  });

  it('takes closures upstream and downstream', () => {
    const g = pipeline();
    expect([...g.closure(['train'], 'up')].sort()).toEqual(['features', 'labels', 'prepare', 'train']);
    expect([...g.closure(['labels'], 'down')].sort()).toEqual(['evaluate', 'labels', 'report', 'train']);
    expect([...g.closure(['prepare', 'report'], 'up')].sort()).toEqual(['features', 'labels', 'prepare', 'report', 'train']);
  });

  it('resolves targets by stage name, group and the path a stage produces', () => {
    const g = graph(stage('a@1', [], ['out/1.txt'], { group: 'a' }), stage('a@2', [], ['out/2.txt'], { group: 'a' }), stage('b', ['out/1.txt'], ['b.txt']));
    expect(g.resolveTargets(['b'], os.tmpdir())).toEqual(['b']);
    expect(g.resolveTargets(['a'], os.tmpdir())).toEqual(['a@1', 'a@2']);
    expect(g.resolveTargets(['out/2.txt', 'a@2'], os.tmpdir())).toEqual(['a@2']);
    expect(() => g.resolveTargets(['bb'], os.tmpdir())).toThrow(/unknown stage or output 'bb'/);
    try {
      g.resolveTargets(['bb'], os.tmpdir());
    } catch (e) {
      expect((e as UserError).diagnostics[0]!.hint).toBe("did you mean 'b'?");
    }
  });

  it('names the stages of a cycle, producer first, at a stage location', () => {
    const e = analyzeError(
      stage('a', ['c.txt'], ['a.txt']),
      stage('b', ['a.txt'], ['b.txt']),
      stage('c', ['b.txt'], ['c.txt']),
      stage('d', ['a.txt'], ['d.txt']),
    );
    // b makes b.txt for c, c makes c.txt for a, a makes a.txt for b; d (downstream only) is not named.
    expect(e.message).toBe('the pipeline has a cycle: b -> c -> a -> b');
    expect(e.diagnostics[0]!.location?.file).toBe('pipeline.yaml');
  });

  it('refuses a stage that depends on its own output, and two producers of one path, all at once', () => {
    const e = analyzeError(stage('a', ['x.txt'], ['x.txt']), stage('b', [], ['out/y.txt']), stage('c', [], ['out']));
    expect(e.diagnostics.map((d) => d.message)).toEqual([
      "outputs overlap: 'out/y.txt' of stage 'b' and 'out' of stage 'c'",
      "stage 'a' depends on its own output 'x.txt'",
    ]);
    expect(analyzeError(stage('a', [], ['x.txt']), stage('b', [], ['x.txt'])).message).toBe("output 'x.txt' is produced by two stages: 'a' and 'b'");
  });

  it('links a glob dep to the stage producing under its base', () => {
    const g = graph(stage('make', [], ['parts']), stage('join', ['parts/*.csv'], ['all.csv']));
    expect([...g.upstream('join')]).toEqual(['make']);
  });
});
