/** Informer typed stores: each object is decoded once, when it arrives, and a bad one says why. */
import { describe, expect, it } from 'vitest';
import { Informer } from '../../operator/kube/informer.js';
import { KubeError } from '../../operator/kube/rest.js';
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

describe('Informer lists as client-go reflectors do', () => {
  it('first from the watch cache (resourceVersion=0), after a broken watch not older than the last version, after 410 Gone consistently', async () => {
    const gets: string[] = [];
    let watches = 0;
    const rest = {
      get: async (path: string) => {
        gets.push(path);
        return { metadata: { resourceVersion: String(10 + gets.length) }, items: [{ metadata: { name: 'a', resourceVersion: '5' } }] };
      },
      watch: () => {
        watches++;
        // 1st watch: the connection breaks; 2nd: the version expired; 3rd: stays open.
        const done = watches === 1 ? Promise.reject(new Error('socket hang up')) : watches === 2 ? Promise.reject(new KubeError(410, 'Expired', 'too old resource version')) : new Promise<void>(() => undefined);
        done.catch(() => undefined);
        return { done, stop: () => undefined };
      },
    };
    const inf = new Informer(rest as never, PATH, {});
    inf.start();
    await until(() => gets.length >= 3);
    inf.stop();
    expect(gets).toEqual([`${PATH}?resourceVersion=0`, `${PATH}?resourceVersion=11`, `${PATH}?limit=500`]);
  });
});
