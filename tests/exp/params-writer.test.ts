import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { REPO, TempRepo } from '../helpers.js';
import { setValueInText } from '../../runner/exp/params-writer.js';

let repo: TempRepo | undefined;
afterEach(() => repo?.cleanup());

/** The one line that changed between two texts, or undefined when several did. */
function changedLines(a: string, b: string): [string, string][] {
  const x = a.split('\n');
  const y = b.split('\n');
  expect(y.length).toBe(x.length);
  return x.map((l, i) => [l, y[i]!] as [string, string]).filter(([l, m]) => l !== m);
}

const LEAD_PARAMS = fs.readFileSync(path.join(REPO, 'params.yaml'), 'utf8');

describe('setValueInText edits only the value it sets', () => {
  it('keeps every other byte of the lead params.yaml: comments, flow style, quoting', () => {
    const out = setValueInText(LEAD_PARAMS, ['split', 'seed'], 7, { json: false });
    expect(changedLines(LEAD_PARAMS, out)).toEqual([['  seed: 42', '  seed: 7']]);
    expect(out).toContain('learning_rate: {uniform: [0.01, 0.31]}');
    expect(out).toContain("min_date: '2024-01-01'");
    expect(YAML.parse(out).split.seed).toBe(7);
  });

  it('a value inside a flow mapping keeps the flow mapping as written', () => {
    const out = setValueInText(LEAD_PARAMS, ['train', 'models', 'xgboost_rf', 'space', 'learning_rate', 'uniform'], [0.05, 0.2], { json: false });
    expect(changedLines(LEAD_PARAMS, out)).toEqual([['        learning_rate: {uniform: [0.01, 0.31]}', '        learning_rate: {uniform: [0.05, 0.2]}']]);
    const one = setValueInText(LEAD_PARAMS, ['train', 'models', 'xgboost_boost', 'space', 'gamma', 'uniform', 1], 3, { json: false });
    expect(changedLines(LEAD_PARAMS, one)).toEqual([['        gamma: {uniform: [0, 10]}', '        gamma: {uniform: [0, 3]}']]);
  });

  it('keeps a trailing comment and the quoting style of a string it replaces', () => {
    const text = `# top\nclean:\n  min_date: '2024-01-01'   # first day\n  name: "a"\n  plain: x # c\n`;
    expect(setValueInText(text, ['clean', 'min_date'], '2024-02-01', { json: false })).toBe(
      `# top\nclean:\n  min_date: '2024-02-01'   # first day\n  name: "a"\n  plain: x # c\n`,
    );
    expect(setValueInText(text, ['clean', 'name'], 'b', { json: false })).toContain('  name: "b"\n');
    expect(setValueInText(text, ['clean', 'plain'], 'y', { json: false })).toContain('  plain: y # c\n');
    // a string that is not plain YAML gets quoted, and reads back as the same string
    const tricky = setValueInText(text, ['clean', 'plain'], 'a: b # not a comment', { json: false });
    expect(YAML.parse(tricky).clean.plain).toBe('a: b # not a comment');
    expect(tricky).toContain('# c\n');
  });

  it('a string with a comma inside a flow mapping is quoted so it stays one value', () => {
    const text = 'm: {a: 1, b: x}\n';
    const out = setValueInText(text, ['m', 'b'], 'p,q', { json: false });
    expect(YAML.parse(out)).toEqual({ m: { a: 1, b: 'p,q' } });
    expect(out).toMatch(/^m: \{a: 1, b: ("p,q"|'p,q')\}\n$/);
  });

  it('an empty value gets one; a block list becomes a flow list on the key line; list items by index', () => {
    const text = 'a:\n  e:\n  l:\n    - 1\n    - 2\n  # after\n  z: 2\n';
    expect(setValueInText(text, ['a', 'e'], 3, { json: false })).toBe('a:\n  e: 3\n  l:\n    - 1\n    - 2\n  # after\n  z: 2\n');
    expect(setValueInText(text, ['a', 'l'], [3, 4], { json: false })).toBe('a:\n  e:\n  l: [3, 4]\n  # after\n  z: 2\n');
    expect(setValueInText(text, ['a', 'l', 1], 9, { json: false })).toBe('a:\n  e:\n  l:\n    - 1\n    - 9\n  # after\n  z: 2\n');
  });

  it('JSON params files keep their layout too', () => {
    const text = '{\n    "train": {"lr": 0.1, "note": "x"},\n    "seed": 1\n}\n';
    const out = setValueInText(text, ['train', 'lr'], 0.5, { json: true });
    expect(out).toBe('{\n    "train": {"lr": 0.5, "note": "x"},\n    "seed": 1\n}\n');
    expect(JSON.parse(setValueInText(text, ['train', 'note'], 'a "b"', { json: true })).train.note).toBe('a "b"');
  });

  it('a key that is not there is named', () => {
    expect(() => setValueInText('a: 1\n', ['b'], 2, { json: false, file: 'params.yaml' })).toThrow("param 'b' not found in params.yaml");
  });
});

describe('exp run -S through the CLI', () => {
  it('changes only the line of the value it sets, in a file with comments and flow style', async () => {
    const params = `# tuning\ntrain:\n  lr: 0.1   # learning rate\n  space: {uniform: [0.01, 0.31]}\n  name: 'base'\n\nsplit:\n  seed: 1\n`;
    repo = new TempRepo({
      'pipeline.yaml':
        "stages:\n  t:\n    cmd: >-\n      node -e \"require('fs').writeFileSync('m.json', JSON.stringify({score: ${train.lr}}))\"\n    params: [train, split.seed]\n    metrics: [m.json]\n",
      'params.yaml': params,
    });
    const r = await repo.run(['exp', 'run', '-S', 'train.lr=0.25', '-S', 'split.seed=3', '-n', 'one']);
    expect(r.code, r.stderr).toBe(0);
    expect(repo.read('params.yaml')).toBe(params.replace('lr: 0.1', 'lr: 0.25').replace('seed: 1', 'seed: 3'));
    expect(JSON.parse(repo.read('m.json')).score).toBe(0.25);
  });
});
