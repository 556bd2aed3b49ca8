import fs from 'node:fs';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TempRepo } from '../helpers.js';
import { interactive } from '../../runner/ui/api.js';

let repo: TempRepo | undefined;
afterEach(() => repo?.cleanup());

const events = () =>
  repo!
    .read('.lockstep/events.jsonl')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('the repro event log (.lockstep/events.jsonl)', () => {
  it('a run writes its start, each stage start and finish, and its end; a no-op run writes nothing; the next run starts a new file', async () => {
    repo = new TempRepo({
      'pipeline.yaml': 'stages:\n  a:\n    cmd: echo a > a.txt\n    outs: [a.txt]\n  b:\n    cmd: echo b > b.txt\n    deps: [a.txt]\n    outs: [b.txt]\n',
    });
    expect((await repo.run(['repro'])).code).toBe(0);
    const first = events();
    expect(first.map((e) => [e.kind, e.stage ?? '', e.state ?? ''])).toEqual([
      ['run', '', ''],
      ['started', 'a', ''],
      ['finished', 'a', 'done'],
      ['started', 'b', ''],
      ['finished', 'b', 'done'],
      ['end', '', ''],
    ]);
    expect(first[1]!.why).toEqual(['never run']);
    expect(typeof first[2]!.ms).toBe('number');
    const st = fs.statSync(repo.path('.lockstep/events.jsonl'));
    expect((await repo.run(['repro'])).code).toBe(0); // nothing to do
    const st2 = fs.statSync(repo.path('.lockstep/events.jsonl'));
    expect([st2.ino, st2.size, st2.mtimeMs]).toEqual([st.ino, st.size, st.mtimeMs]);
    expect((await repo.run(['repro', '--dry', '-f'])).code).toBe(0); // a dry run neither
    expect(fs.statSync(repo.path('.lockstep/events.jsonl')).mtimeMs).toBe(st.mtimeMs);
    expect((await repo.run(['repro', '-f', 'b', '-s'])).code).toBe(0);
    expect(events().map((e) => [e.kind, e.stage ?? ''])).toEqual([
      ['run', ''],
      ['started', 'b'],
      ['finished', 'b'],
      ['end', ''],
    ]);
  });

  it('a failing stage is logged as failed with its error', async () => {
    repo = new TempRepo({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: exit 3\n' });
    expect((await repo.run(['repro'])).code).toBe(1);
    const fin = events().find((e) => e.kind === 'finished')!;
    expect(fin.state).toBe('failed');
    expect(String(fin.error)).toMatch(/3/);
  });
});

describe('lockstep ui on the command line', () => {
  it('bad options and a port in use are one clear line and exit 2', async () => {
    repo = new TempRepo({ 'pipeline.yaml': 'stages: {}\n' });
    let r = await repo.run(['ui', '--port', 'abc']);
    expect([r.code, r.stderr.trim()]).toEqual([2, "error: --port must be a whole number from 0 to 65535, got 'abc'"]);
    r = await repo.run(['ui', '--port', '70000']);
    expect(r.code).toBe(2);
    r = await repo.run(['ui', 'extra']);
    expect(r.stderr).toContain("error: too many arguments for 'ui'. Expected 0 arguments but got 1.");
    const busy = net.createServer();
    await new Promise<void>((res) => busy.listen(0, '127.0.0.1', res));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      r = await repo.run(['ui', '--port', String(port)]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`error: port ${port} on 127.0.0.1 is in use`);
      expect(r.stderr).not.toMatch(/at .*\.js/);
    } finally {
      busy.close();
    }
    repo.write({ 'pipeline.yaml': 'stages:\n  a:\n    cmdd: x\n' });
    r = await repo.run(['ui', '--port', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^pipeline\.yaml:3:5: error: unknown field 'cmdd'/);
  });
});

describe('plots made interactive', () => {
  it('adds tooltips, zoom on the scales and a legend that toggles series; confusion heat maps get tooltips only', () => {
    const line = interactive({ mark: { type: 'line', point: true }, encoding: { x: { field: 'step' }, color: { field: 'series' } } }) as Record<string, any>;
    expect(line.mark.tooltip).toEqual({ content: 'data' });
    expect(line.params.map((p: { name: string }) => p.name)).toEqual(['zoom', 'pick']);
    expect(line.encoding.opacity.condition.param).toBe('pick');
    const heat = interactive({ mark: 'rect', encoding: { x: { field: 'predicted' }, color: { aggregate: 'count' } } }) as Record<string, any>;
    expect(heat.mark).toEqual({ type: 'rect', tooltip: { content: 'data' } });
    expect(heat.params).toBeUndefined();
  });
});

describe('lockstep ui serves artifacts from the cache by hash', () => {
  it('the bytes of a cached output by its content hash; a malformed hash is 400, an unknown one 404', async () => {
    repo = new TempRepo({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: echo model-bytes > m.bin\n    outs: [m.bin]\n' });
    expect((await repo.run(['repro'])).code).toBe(0);
    const hash = /xxh64: ([0-9a-f]{16})/.exec(repo.read('pipeline.lock'))![1]!;
    fs.writeFileSync(repo.path('m.bin'), 'changed in the workspace since\n');
    const child = repo.spawn(['ui', '--port', '0']);
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let err = '';
        child.stdout!.on('data', (d: Buffer) => {
          err += d;
          const m = /(http:\/\/127\.0\.0\.1:\d+)/.exec(err);
          if (m) resolve(m[1]!);
        });
        void child.then(() => reject(new Error(`ui exited: ${err}`)));
      });
      const ok = await fetch(`${url}/api/artifacts/${hash}`);
      expect([ok.status, await ok.text()]).toEqual([200, 'model-bytes\n']);
      expect((await fetch(`${url}/api/artifacts/not-a-hash`)).status).toBe(400);
      const gone = await fetch(`${url}/api/artifacts/${'0'.repeat(16)}`);
      expect([gone.status, ((await gone.json()) as { error: string }).error]).toEqual([
        404,
        `object ${'0'.repeat(16)} is not in the local cache (collected, or never pulled: lockstep pull)`,
      ]);
    } finally {
      child.kill('SIGTERM');
      await child;
    }
  });
});
