/**
 * What the queue runner does with a reconciler's result (the machinery owns the plumbing), and the
 * controller's pure indexes.
 */
import { describe, expect, it } from 'vitest';
import { PeerIndex } from '../../operator/controller/peer-index.js';
import { SegmentIndex } from '../../operator/controller/segment-index.js';
import { carryEnqueue, runWorkers, TerminalError, WorkQueue, type ReconcileContext } from '../../operator/kube/workqueue.js';
import { FakeClock, flushPromises } from '../../operator/lib/clock.js';
import { log } from '../../operator/lib/log.js';

async function runOnce(result: (key: string) => Promise<unknown>) {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock, baseDelayMs: 100 });
  const seen: Array<{ key: string; ctx: ReconcileContext }> = [];
  const done: string[] = [];
  const workers = runWorkers(
    q,
    1,
    async (key, ctx) => {
      seen.push({ key, ctx });
      return (await result(key)) as never;
    },
    { clock, log, component: 'test', onDone: (key, _ms, outcome) => void done.push(`${key}:${outcome}`) },
  );
  q.add('a');
  await flushPromises();
  return { clock, q, seen, done, stop: async () => (q.shutDown(), await workers) };
}

describe('runWorkers: the result of a reconcile', () => {
  it('gives every reconcile its own context: a child logger and a distinct reconcile id', async () => {
    const r = await runOnce(async () => undefined);
    r.q.add('a');
    await flushPromises();
    expect(r.seen).toHaveLength(2);
    expect(r.seen[0]!.ctx.reconcileId).not.toBe(r.seen[1]!.ctx.reconcileId);
    expect(r.seen[0]!.ctx.log.bindings()).toMatchObject({ component: 'test', key: 'a', reconcileId: r.seen[0]!.ctx.reconcileId });
    await r.stop();
  });

  it('enqueues the keys a reconcile hands back, now or after their delay', async () => {
    const r = await runOnce(async (k) => (k === 'a' ? { enqueue: [{ key: 'b' }, { key: 'c', afterMs: 500 }] } : undefined));
    expect(r.seen.map((s) => s.key)).toEqual(['a', 'b']);
    r.clock.advance(500);
    await flushPromises();
    expect(r.seen.map((s) => s.key)).toEqual(['a', 'b', 'c']);
    await r.stop();
  });

  it('a TerminalError is not retried; an ordinary error is, rate-limited', async () => {
    const t = await runOnce(async (k) => {
      if (k === 'a') throw new TerminalError('bad spec');
    });
    t.clock.advance(60_000);
    await flushPromises();
    expect(t.seen.map((s) => s.key)).toEqual(['a']);
    expect(t.done).toEqual(['a:error']);
    await t.stop();

    let n = 0;
    const e = await runOnce(async () => {
      if (n++ === 0) throw new Error('apiserver down');
    });
    e.clock.advance(100);
    await flushPromises();
    expect(e.done).toEqual(['a:error', 'a:ok']);
    await e.stop();
  });

  it('a failed reconcile still enqueues the keys it carried (carryEnqueue)', async () => {
    const r = await runOnce(async (k) => {
      if (k === 'a') throw carryEnqueue(new Error('write failed'), [{ key: 'peer:x' }]);
    });
    expect(r.seen.map((s) => s.key)).toEqual(['a', 'peer:x']);
    await r.stop();
  });
});

describe('SegmentIndex', () => {
  it('returns the segments a node left, and knows each segment\'s members', () => {
    const s = new SegmentIndex();
    expect(s.update('n1', ['subnet:10.0.1.0/24'])).toEqual([]);
    expect(s.update('n2', ['subnet:10.0.1.0/24'])).toEqual([]);
    expect(s.update('n3', ['subnet:10.0.2.0/24'])).toEqual([]);
    expect(s.update('n2', ['subnet:10.0.1.0/24'])).toEqual([]); // unchanged
    expect(s.update('n2', ['subnet:10.0.2.0/24'])).toEqual(['subnet:10.0.1.0/24']);
    expect(s.membersOf('subnet:10.0.2.0/24').sort()).toEqual(['n2', 'n3']);
    expect(s.membersOf('subnet:10.0.1.0/24')).toEqual(['n1']);
    expect(s.keysOf('n2')).toEqual(['subnet:10.0.2.0/24']);
    expect(s.knownSubnets().sort()).toEqual(['10.0.1.0/24', '10.0.2.0/24']);
    s.remove('n1');
    expect(s.knownSubnets()).toEqual(['10.0.2.0/24']);
    expect(s.keys()).toEqual(['subnet:10.0.2.0/24']);
    expect(s.keysOf('n1')).toEqual([]);
  });
});

describe('PeerIndex', () => {
  it('tells when a selection or a conflict changed, and which peers a deleted node leaves', () => {
    const p = new PeerIndex();
    expect(p.setSelected('tor', 'n1', true)).toBe(true);
    expect(p.setSelected('tor', 'n1', true)).toBe(false);
    expect(p.setSelected('tor2', 'n1', false)).toBe(false);
    expect(p.setConflict('dup', 'n2', true)).toBe(true);
    expect(p.selectedBy('tor')).toEqual(['n1']);
    expect(p.conflictsOf('dup')).toEqual(['n2']);
    expect(p.forgetNode('n1')).toEqual(['tor']);
    expect(p.forgetNode('n1')).toEqual([]);
    p.forgetPeer('dup');
    expect(p.conflictsOf('dup')).toEqual([]);
  });
});
