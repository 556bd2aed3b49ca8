import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { Claims, leaseAlive, FOREIGN_LEASE_TTL_MS, type Lease } from '../../runner/exp/claim.js';
import { currentOwner, ownerDead, processStart } from '../../runner/owner.js';

const tmpDirs: string[] = [];
afterEach(() => {
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-claims-'));
  tmpDirs.push(d);
  return d;
}

/** A pid that certainly belonged to a process that has exited. */
async function deadPid(): Promise<number> {
  const c = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => c.once('exit', r));
  return c.pid!;
}

describe('owners and leases (unit)', () => {
  it('knows this process is alive and an exited or reused pid is dead', async () => {
    const me = currentOwner();
    expect(me.start).toMatch(/^\d+$/);
    expect(ownerDead(me)).toBe(false);
    expect(ownerDead({ ...me, pid: await deadPid() })).toBe(true);
    // Same pid, other start time: the pid was reused by someone else.
    expect(ownerDead({ ...me, start: String(Number(me.start) + 1) })).toBe(true);
    expect(processStart(await deadPid())).toBeUndefined();
  });

  it('expires a lease from another host only by its age', () => {
    const l: Lease = { pid: 1, host: 'elsewhere.example', token: 't', since: '', gen: 0, dir: '' };
    expect(leaseAlive(l, Date.now())).toBe(true);
    expect(leaseAlive(l, Date.now() - FOREIGN_LEASE_TTL_MS - 1)).toBe(false);
  });
});

describe('claims (unit)', () => {
  it('gives a name to one claimant, passes over a dead claim, and cleans it up on release', async () => {
    const c = new Claims(tmp());
    const a = c.tryClaim('exp-1', '/x')!;
    expect(a.gen).toBe(0);
    expect(c.tryClaim('exp-1', '/y')).toBeUndefined(); // held by a live process (this one)
    expect(c.held('exp-1', a)).toBe(true);
    c.release('exp-1', a);
    expect(c.held('exp-1', a)).toBe(false);

    // A claim whose runner died: the next claimant takes generation 1, and releasing removes both.
    const dead = { ...currentOwner(), pid: await deadPid(), token: 'dead', since: '', gen: 0, dir: '' };
    fs.writeFileSync(path.join(c.dir, 'exp-2@0.lease'), JSON.stringify(dead));
    const b = c.tryClaim('exp-2', '/z')!;
    expect(b.gen).toBe(1);
    expect(c.tryClaim('exp-2', '/z')).toBeUndefined();
    c.release('exp-2', b);
    expect(fs.readdirSync(c.dir).filter((f) => f.endsWith('.lease'))).toEqual([]);
  });

  it('lets exactly one of many racing processes claim each name', async () => {
    const dir = tmp();
    const script = `
      const { Claims } = await import(${JSON.stringify(path.resolve('dist/runner/exp/claim.js'))});
      const c = new Claims(${JSON.stringify(dir)});
      const got = [];
      for (let i = 0; i < 30; i++) if (c.tryClaim('e' + i, '')) got.push(i);
      process.stdout.write(JSON.stringify(got));
      await new Promise((r) => setTimeout(r, 300)); // stay alive while the others look
    `;
    const runs = Array.from({ length: 4 }, () => {
      const p = spawn(process.execPath, ['--input-type=module', '-e', script]);
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      return new Promise<number[]>((res) => p.once('close', () => res(JSON.parse(out || '[]'))));
    });
    const all = (await Promise.all(runs)).flat().sort((x, y) => x - y);
    expect(all).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });
});
