/**
 * The agent's host routes from its L2Segments (operator/agent/segments.ts): the pure decision (unknown
 * while a named segment has not listed or does not decode; every route but the node's own), and the
 * watches behind it over a fake apiserver (one per named segment, following the names, kicking the agent).
 */
import { describe, expect, it } from 'vitest';
import { decideSegmentRoutes, SegmentRoutes, type SegmentView } from '../../operator/agent/segments.js';
import { API_PATH } from '../../operator/api/common.js';
import { L2Segment, parseObject, type L2SegmentObj } from '../../operator/api/kinds.js';
import type { L2SegmentSpec } from '../../operator/api/segment.js';
import { GatedRest } from '../support/gated-rest.js';

const COLLECTION = `${API_PATH}/l2segments`;

const V4 = { key: 'label:rack-1', family: 4, reason: 'SegmentLabel', routes: [
  { destination: '10.244.1.0/24', via: '10.0.1.11', node: 'n1' },
  { destination: '10.244.2.0/24', via: '10.0.1.12', node: 'n2' },
  { destination: '10.244.3.0/24', via: '10.0.1.13', node: 'n3' },
] } satisfies L2SegmentSpec;
const V6 = { key: 'label:rack-1', family: 6, reason: 'SegmentLabel', routes: [
  { destination: 'fd00:10:244:1::/64', via: 'fd00:20::11', node: 'n1' },
  { destination: 'fd00:10:244:2::/64', via: 'fd00:20::12', node: 'n2' },
] } satisfies L2SegmentSpec;

function segment(name: string, spec: Record<string, unknown>): Record<string, any> {
  return { apiVersion: 'podfabric.io/v1alpha1', kind: 'L2Segment', metadata: { name, generation: 1 }, spec };
}
const decoded = (name: string, spec: Record<string, unknown>): SegmentView => {
  try {
    return { listed: true, object: { ok: true, value: parseObject(L2Segment, segment(name, spec)) as L2SegmentObj } };
  } catch (e) {
    return { listed: true, object: { ok: false, error: (e as Error).message } };
  }
};
const absent: SegmentView = { listed: true, object: undefined };
const listing: SegmentView = { listed: false };
const dsts = (rs: Array<{ destination: string }> | undefined) => rs?.map((r) => r.destination);

describe('decideSegmentRoutes (table)', () => {
  it.each([
    { name: 'no segment named: no routes (known, empty)', views: [], routes: [], waiting: [] },
    { name: 'one family: every route but its own', views: [['v4', decoded('v4', V4)]], routes: ['10.244.2.0/24', '10.244.3.0/24'], waiting: [] },
    { name: 'two families: both, v4 first', views: [['v6', decoded('v6', V6)], ['v4', decoded('v4', V4)]], routes: ['10.244.2.0/24', '10.244.3.0/24', 'fd00:10:244:2::/64'], waiting: [] },
    { name: 'a named segment absent once listed: no routes from it', views: [['v4', decoded('v4', V4)], ['v6', absent]], routes: ['10.244.2.0/24', '10.244.3.0/24'], waiting: [] },
    { name: 'one segment still listing: unknown, even with the other known', views: [['v4', decoded('v4', V4)], ['v6', listing]], routes: undefined, waiting: ['v6'] },
    { name: 'every segment still listing: unknown', views: [['v4', listing], ['v6', listing]], routes: undefined, waiting: ['v4', 'v6'] },
  ] as Array<{ name: string; views: Array<[string, SegmentView]>; routes: string[] | undefined; waiting: string[] }>)('$name', ({ views, routes, waiting }) => {
    const d = decideSegmentRoutes('n1', views);
    expect(dsts(d.routes)).toEqual(routes);
    expect(d.waiting).toEqual(waiting);
    expect(d.unreadable).toEqual([]);
  });

  it('the node\'s own route is never installed, whichever member it is', () => {
    for (const self of ['n1', 'n2', 'n3']) {
      const d = decideSegmentRoutes(self, [['v4', decoded('v4', V4)]]);
      expect(d.routes!.map((r) => r.node)).toEqual(['n1', 'n2', 'n3'].filter((n) => n !== self));
    }
  });

  it('an object that does not decode: unknown (the kernel\'s routes kept), named with its error', () => {
    const bad = decoded('v4', { ...V4, family: 5 });
    expect(bad).toMatchObject({ object: { ok: false } });
    const d = decideSegmentRoutes('n1', [['v4', bad], ['v6', decoded('v6', V6)]]);
    expect(d.routes).toBeUndefined();
    expect(d.unreadable).toHaveLength(1);
    expect(d.unreadable[0]).toMatch(/^v4: /);
  });
});

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

function rig() {
  const rest = new GatedRest();
  rest.set(COLLECTION, [segment('v4', V4), segment('v6', V6)]);
  let kicks = 0;
  const seg = new SegmentRoutes(rest.asRest(), () => kicks++);
  const watching = (name: string) => rest.calls.some((c) => c.method === 'WATCH' && c.path.includes(encodeURIComponent(`metadata.name=${name}`)));
  return { rest, seg, kicks: () => kicks, watching };
}

/** Watches these names, and waits until each has listed and its watch is open. */
async function watched(r: ReturnType<typeof rig>, names: string[]): Promise<void> {
  r.seg.want(names);
  await r.seg.waitForSync(5_000);
  for (const n of names) await until(`the ${n} watch`, () => r.watching(n));
}

describe('SegmentRoutes: one watch per named segment', () => {
  it('unknown until every named segment has listed; then both families, without its own route; the first list kicks', async () => {
    const r = rig();
    r.rest.hold();
    r.seg.want(['v4', 'v6']);
    expect(r.seg.routes('n1')).toBeUndefined();
    expect(r.seg.decision('n1').waiting.sort()).toEqual(['v4', 'v6']);
    r.rest.release();
    await r.seg.waitForSync(5_000);
    expect(r.rest.calls.filter((c) => c.method === 'GET').map((c) => c.path)).toEqual([
      expect.stringContaining(`${COLLECTION}?fieldSelector=${encodeURIComponent('metadata.name=v4')}`),
      expect.stringContaining(`${COLLECTION}?fieldSelector=${encodeURIComponent('metadata.name=v6')}`),
    ]);
    expect(dsts(r.seg.routes('n1'))).toEqual(['10.244.2.0/24', '10.244.3.0/24', 'fd00:10:244:2::/64']);
    await until('a kick', () => r.kicks() > 0);
    r.seg.stop();
  });

  it('a named segment that does not exist: known once listed (no routes from it), and that list kicks the agent', async () => {
    const r = rig();
    r.seg.want(['v4-label-absent-00000000']);
    await r.seg.waitForSync(5_000);
    expect(r.seg.routes('n1')).toEqual([]);
    await until('the kick of the first list', () => r.kicks() === 1);
    r.seg.stop();
  });

  it('a spec change kicks; an update with the same spec does not; a delete kicks and takes its routes', async () => {
    const r = rig();
    await watched(r, ['v4']);
    await until('the first kicks (the add and the first list)', () => r.kicks() === 2);
    const settled = r.kicks();
    r.rest.emit(COLLECTION, 'MODIFIED', { ...segment('v4', V4), metadata: { name: 'v4', generation: 1, labels: { x: 'y' } } });
    r.rest.emit(COLLECTION, 'MODIFIED', segment('v4', { ...V4, routes: V4.routes.slice(0, 2) }));
    await until('the spec change', () => dsts(r.seg.routes('n1'))?.length === 1);
    expect(r.kicks()).toBe(settled + 1);
    r.rest.emit(COLLECTION, 'DELETED', segment('v4', V4));
    await until('the delete', () => r.seg.routes('n1')?.length === 0);
    expect(r.kicks()).toBe(settled + 2);
    r.seg.stop();
  });

  it('names changing: the old watch is stopped (its events no longer count), the new one starts unknown', async () => {
    const r = rig();
    await watched(r, ['v4']);
    r.rest.hold();
    r.seg.want(['v6']);
    expect(r.seg.names()).toEqual(['v6']);
    expect(r.seg.routes('n1')).toBeUndefined(); // v6 still listing: the kernel's routes are kept meanwhile
    const before = r.kicks();
    r.rest.emit(COLLECTION, 'MODIFIED', segment('v4', { ...V4, routes: V4.routes.slice(0, 1) }));
    expect(r.kicks()).toBe(before); // the stopped v4 watch kicks nothing (v6 has not listed yet)
    r.rest.release();
    await r.seg.waitForSync(5_000);
    expect(dsts(r.seg.routes('n1'))).toEqual(['fd00:10:244:2::/64']);
    await until('the v6 first list kick', () => r.kicks() > before);
    r.seg.stop();
    expect(r.seg.names()).toEqual([]);
  });
});
