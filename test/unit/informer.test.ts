/** Informer typed stores: each object is decoded once, when it arrives, and a bad one says why. */
import { describe, expect, it } from 'vitest';
import { afterWatchFailure, Informer, isExpired, REWATCH_LIMIT } from '../../operator/kube/informer.js';
import { KubeError, type KubeRest, type WatchEvent } from '../../operator/kube/rest.js';
import { FakeRest } from '../support/fakes.js';

const PATH = '/apis/x/v1/things';

async function until(f: () => boolean): Promise<void> {
  const end = Date.now() + 2000;
  while (!f()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('Informer decode', () => {
  it('decodes on arrival, once per version, and keeps the error of an undecodable object', async () => {
    const rest = new FakeRest();
    rest.set(PATH, [
      { metadata: { name: 'a' }, spec: { n: 1 } },
      { metadata: { name: 'b' }, spec: { n: 'x' } },
    ]);
    const decoded: string[] = [];
    const inf = new Informer<{ metadata: { name?: string }; spec: { n: unknown } }, number>(
      rest.asRest(),
      PATH,
      {},
      {
        decode: (o) => {
          decoded.push(o.metadata.name!);
          if (typeof o.spec.n !== 'number') throw new Error('n must be a number');
          return o.spec.n;
        },
      },
    );
    inf.start();
    await inf.waitForSync();
    expect(inf.decoded('a')).toEqual({ ok: true, value: 1 });
    expect(inf.decoded('b')).toEqual({ ok: false, error: 'n must be a number' });
    // Reads do not decode again.
    for (let i = 0; i < 5; i++) inf.decoded('a');
    expect(decoded.sort()).toEqual(['a', 'b']);
    await until(() => rest.count('WATCH', /things/) === 1);
    rest.emit(PATH, 'MODIFIED', { metadata: { name: 'b' }, spec: { n: 2 } });
    expect(inf.decoded('b')).toEqual({ ok: true, value: 2 });
    expect(decoded.sort()).toEqual(['a', 'b', 'b']);
    rest.emit(PATH, 'DELETED', { metadata: { name: 'a' }, spec: { n: 1 } });
    expect(inf.decoded('a')).toBeUndefined();
    inf.stop();
  });
});

type Obj = { metadata: { name: string; resourceVersion: string }; data?: string };
type Sink = { send(e: WatchEvent<Obj>): void; fail(e: Error): void; end(): void };

/**
 * One collection with the apiserver's watch semantics: a watch from version X replays every change after
 * X (deletes included), or fails with 410 Gone when X is older than the compacted history.
 */
class Collection {
  private rv = 10;
  private readonly items = new Map<string, Obj>();
  private readonly history: Array<WatchEvent<Obj>> = [];
  private open: Sink[] = [];
  /** Versions below this are compacted away. */
  compactedBelow = 0;
  /** Errors the next watches fail with at once, in order. */
  refuse: Error[] = [];
  /** LIST <query> and WATCH <resourceVersion>, in order. */
  calls: string[] = [];

  change(type: 'ADDED' | 'MODIFIED' | 'DELETED', name: string, data?: string): void {
    const object = { metadata: { name, resourceVersion: String(++this.rv) }, data };
    if (type === 'DELETED') this.items.delete(name);
    else this.items.set(name, object);
    this.history.push({ type, object });
    for (const w of [...this.open]) w.send({ type, object });
  }

  /** Fails every open watch, as a destroyed connection does. */
  breakWatches(err: Error): void {
    for (const w of this.open.splice(0)) w.fail(err);
  }

  /** Ends every open watch normally, as the server does at its timeoutSeconds. */
  endWatches(): void {
    for (const w of this.open.splice(0)) w.end();
  }

  /** Sends an ERROR event carrying a Status on every open watch. */
  sendError(code: number, message: string): void {
    for (const w of [...this.open]) w.send({ type: 'ERROR', object: { kind: 'Status', code, message } as never });
  }

  watching(): number {
    return this.calls.filter((c) => c.startsWith('WATCH')).length;
  }

  rest(): KubeRest {
    const get = async (path: string) => {
      this.calls.push(`LIST ${path.split('?')[1]}`);
      return { metadata: { resourceVersion: String(this.rv) }, items: [...this.items.values()] };
    };
    const watch = (path: string, onEvent: (e: WatchEvent<Obj>) => void) => {
      const from = Number(new URLSearchParams(path.split('?')[1]).get('resourceVersion'));
      this.calls.push(`WATCH ${from}`);
      let resolve!: () => void;
      let reject!: (e: Error) => void;
      const done = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
      done.catch(() => undefined);
      const close = () => (this.open = this.open.filter((x) => x !== w));
      // As KubeRest does: an event the handler throws on ends the watch with that error.
      const w: Sink = {
        send: (e) => {
          try {
            onEvent(e);
          } catch (err) {
            close();
            reject(err as Error);
          }
        },
        fail: reject,
        end: () => resolve(),
      };
      const refused = this.refuse.shift() ?? (from < this.compactedBelow ? new KubeError(410, 'Expired', 'too old resource version') : undefined);
      if (refused) reject(refused);
      else {
        this.open.push(w);
        for (const e of this.history) if (Number(e.object.metadata.resourceVersion) > from) w.send(e);
      }
      return { done, stop: () => (close(), resolve()) };
    };
    return { get, watch } as unknown as KubeRest;
  }
}

function start(c: Collection, seen: string[] = []) {
  const inf = new Informer<Obj>(
    c.rest(),
    PATH,
    {
      onAdd: (o) => seen.push(`add ${o.metadata.name}`),
      onUpdate: (_o, n) => seen.push(`update ${n.metadata.name} ${n.data}`),
      onDelete: (o) => seen.push(`delete ${o.metadata.name}`),
    },
    { backoff: { firstMs: 1, maxMs: 4 } },
  );
  inf.start();
  return inf;
}

/** A collection holding a and b (versions 11, 12) and an informer watching it from 12; seen: its handler calls. */
async function watched() {
  const c = new Collection();
  c.change('ADDED', 'a', '1');
  c.change('ADDED', 'b', '1');
  const seen: string[] = [];
  const inf = start(c, seen);
  await inf.waitForSync();
  await until(() => c.watching() === 1);
  return { c, inf, seen };
}

const names = (inf: Informer<Obj>) => inf.list().map((o) => `${o.metadata.name}=${o.data}`).sort();

/** The requests after the first list and watch, the store, and [relists, rewatches]; then stops the informer. */
function expectAfter(w: Awaited<ReturnType<typeof watched>>, then: { calls: string[]; store: string[]; counts: [number, number] }): void {
  expect(w.c.calls).toEqual(['LIST resourceVersion=0', 'WATCH 12', ...then.calls]);
  expect(names(w.inf)).toEqual(then.store);
  expect([w.inf.relists, w.inf.rewatches]).toEqual(then.counts);
  w.inf.stop();
}

describe('Informer after a broken watch', () => {
  it('watches again from the last version seen, without a list, keeping its store', async () => {
    const w = await watched();
    w.c.change('MODIFIED', 'a', '2');
    w.c.breakWatches(new Error('HTTP/2 ping not answered'));
    await until(() => w.c.watching() === 2);
    expect(w.inf.size()).toBe(2);
    w.c.change('ADDED', 'c', '1');
    expect(w.seen).toEqual(['add a', 'add b', 'update a 2', 'add c']);
    expectAfter(w, { calls: ['WATCH 13'], store: ['a=2', 'b=1', 'c=1'], counts: [1, 1] });
  });

  it('gets what changed while it was disconnected, a delete included, from the re-watch', async () => {
    const w = await watched();
    w.c.breakWatches(new Error('aborted'));
    // Both in the same tick: no watch is open when they happen.
    w.c.change('DELETED', 'b');
    w.c.change('MODIFIED', 'a', '3');
    await until(() => w.inf.size() === 1 && w.inf.get('a')?.data === '3');
    expect(w.seen).toEqual(['add a', 'add b', 'delete b', 'update a 3']);
    expectAfter(w, { calls: ['WATCH 12'], store: ['a=3'], counts: [1, 1] });
  });

  it('relists consistently when the re-watch answers 410 Gone (its version was compacted away)', async () => {
    const w = await watched();
    w.c.compactedBelow = 100;
    w.c.breakWatches(new Error('read ECONNRESET'));
    w.c.change('DELETED', 'a');
    await until(() => w.c.watching() === 3);
    expect(w.seen).toEqual(['add a', 'add b', 'delete a']);
    expectAfter(w, { calls: ['WATCH 12', 'LIST limit=500', 'WATCH 13'], store: ['b=1'], counts: [2, 1] });
  });

  it.each([
    { code: 410, message: 'too old resource version: 12 (40)', calls: ['LIST limit=500', 'WATCH 12'], relists: 2, rewatches: 0 },
    { code: 500, message: 'etcdserver: request timed out', calls: ['WATCH 12'], relists: 1, rewatches: 1 },
  ])('after an ERROR event with code $code: $calls.0', async ({ code, message, calls, relists, rewatches }) => {
    const w = await watched();
    w.c.sendError(code, message);
    await until(() => w.c.watching() === 2);
    expectAfter(w, { calls, store: ['a=1', 'b=1'], counts: [relists, rewatches] });
  });

  it(`relists from the watch cache after ${REWATCH_LIMIT} failed re-watches in a row`, async () => {
    const w = await watched();
    w.c.refuse = Array.from({ length: REWATCH_LIMIT }, () => new KubeError(503, 'ServiceUnavailable', 'watch: 503'));
    w.c.breakWatches(new Error('session destroyed'));
    await until(() => w.c.calls.length === 2 + REWATCH_LIMIT + 2);
    expectAfter(w, { calls: [...Array(REWATCH_LIMIT).fill('WATCH 12'), 'LIST resourceVersion=12', 'WATCH 12'], store: ['a=1', 'b=1'], counts: [2, REWATCH_LIMIT] });
  });
});

describe('Informer after a watch that ended or recovered', () => {
  it('watches again from the last version when the server ends a watch, counting no re-watch', async () => {
    const w = await watched();
    w.c.change('MODIFIED', 'b', '2');
    w.c.endWatches();
    await until(() => w.c.watching() === 2);
    expectAfter(w, { calls: ['WATCH 13'], store: ['a=1', 'b=2'], counts: [1, 0] });
  });

  it('a watch the server ends at once with no event counts as a failed one: backoff, a re-watch', async () => {
    const w = await watched();
    w.c.endWatches();
    await until(() => w.c.watching() === 2);
    expectAfter(w, { calls: ['WATCH 12'], store: ['a=1', 'b=1'], counts: [1, 1] });
  });

  it('a watch that delivered an event starts the count of failures in a row over', async () => {
    const w = await watched();
    const c = w.c;
    const failing = () => Array.from({ length: REWATCH_LIMIT - 1 }, () => new Error('connect ECONNREFUSED'));
    c.refuse = failing();
    c.breakWatches(new Error('aborted'));
    await until(() => c.watching() === 1 + REWATCH_LIMIT);
    c.change('ADDED', 'c', '1');
    c.refuse = failing();
    c.breakWatches(new Error('aborted'));
    await until(() => c.watching() === 1 + 2 * REWATCH_LIMIT);
    c.change('ADDED', 'd', '1');
    expectAfter(w, { calls: [...Array(REWATCH_LIMIT).fill('WATCH 12'), ...Array(REWATCH_LIMIT).fill('WATCH 13')], store: ['a=1', 'b=1', 'c=1', 'd=1'], counts: [1, 2 * REWATCH_LIMIT] });
  });
});

describe('what follows a failed watch', () => {
  const gone = new KubeError(410, 'Expired', 'too old resource version');
  it.each([
    { error: new Error('socket hang up'), failed: 1, next: 'watch' },
    { error: new KubeError(503, 'WatchFailed', 'watch: 503'), failed: REWATCH_LIMIT, next: 'watch' },
    { error: new KubeError(429, 'TooManyRequests', 'watch: 429'), failed: REWATCH_LIMIT + 1, next: 'list' },
    { error: gone, failed: 1, next: 'list-consistent' },
    { error: gone, failed: REWATCH_LIMIT + 1, next: 'list-consistent' },
    { error: new KubeError(500, 'WatchError', 'too old resource version: 5 (9)'), failed: 1, next: 'list-consistent' },
    { error: new KubeError(410, 'Gone', 'the resource version is gone'), failed: 2, next: 'list-consistent' },
  ])('$error.message after $failed failures in a row: $next', ({ error, failed, next }) => {
    expect(afterWatchFailure(error, failed)).toBe(next);
  });

  it('410 Gone is expired; other codes and plain errors are not', () => {
    expect([410, 404, 500].map((c) => isExpired(new KubeError(c, 'WatchFailed', 'x')))).toEqual([true, false, false]);
    expect(isExpired(new Error('aborted'))).toBe(false);
    expect(isExpired('too old resource version')).toBe(false);
  });
});
