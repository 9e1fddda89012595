import { describe, expect, it } from 'vitest';
import { KubeError } from '../../operator/kube/rest.js';
import { OwnWrites, writeWhole } from '../../operator/kube/own-writes.js';
import { FakeRest } from '../support/fakes.js';

const obj = (name: string, rv: string) => ({ metadata: { name, resourceVersion: rv } });
const C = '/apis/x/v1/things';

describe('writeWhole', () => {
  const run = (rest: FakeRest, known: ReturnType<typeof obj> | undefined) =>
    writeWhole(rest.asRest(), { collection: C, name: 'a', fieldManager: 'm', known, body: (stored) => ({ metadata: stored ? { ...stored.metadata } : { name: 'a' }, spec: 1 }) });
  const calls = (rest: FakeRest) => rest.calls.map((c) => `${c.method} ${c.path}`);

  // `fail`: the first request of that method answers this error.
  it.each([
    { name: 'new: POST', known: undefined, fail: undefined, want: [`POST ${C}?fieldManager=m`] },
    { name: 'known: PUT over its resourceVersion', known: obj('a', '3'), fail: undefined, want: [`PUT ${C}/a?fieldManager=m`] },
    { name: 'POST answers AlreadyExists: read, then PUT', known: undefined, fail: { method: 'POST', error: new KubeError(409, 'AlreadyExists', 'exists') }, want: [`POST ${C}?fieldManager=m`, `GET ${C}/a`, `PUT ${C}/a?fieldManager=m`] },
    { name: 'PUT answers NotFound (deleted meanwhile): POST', known: obj('a', '3'), fail: { method: 'PUT', error: new KubeError(404, 'NotFound', 'gone') }, want: [`PUT ${C}/a?fieldManager=m`, `POST ${C}?fieldManager=m`] },
  ])('$name', async ({ known, fail, want }) => {
    const rest = new FakeRest();
    rest.set(C, [obj('a', '9')]);
    let failed = false;
    rest.failRequest = (m) => (fail && m === fail.method && !failed ? ((failed = true), fail.error) : undefined);
    await run(rest, known);
    expect(calls(rest)).toEqual(want);
  });

  it('a conflict reads once and PUTs again; a second conflict fails', async () => {
    const rest = new FakeRest();
    rest.set(C, [obj('a', '9')]);
    rest.failRequest = (m) => (m === 'PUT' ? new KubeError(409, 'Conflict', 'modified') : undefined);
    await expect(run(rest, obj('a', '3'))).rejects.toBeInstanceOf(KubeError);
    expect(calls(rest)).toEqual([`PUT ${C}/a?fieldManager=m`, `GET ${C}/a`, `PUT ${C}/a?fieldManager=m`]);
    expect((rest.calls[2]!.body as { metadata: { resourceVersion: string } }).metadata.resourceVersion).toBe('9');
  });
});

describe('OwnWrites', () => {
  it('its own write until the cache shows it or a later one; a deletion until the cache drops the object', () => {
    const w = new OwnWrites<ReturnType<typeof obj>>();
    expect(w.get('a', obj('a', '5'))).toEqual(obj('a', '5'));
    w.wrote('a', obj('a', '7'));
    expect(w.get('a', obj('a', '5'))!.metadata.resourceVersion).toBe('7');
    expect(w.get('a', undefined)!.metadata.resourceVersion).toBe('7');
    expect(w.get('a', obj('a', '7'))!.metadata.resourceVersion).toBe('7'); // caught up: the cache's, forgotten
    expect(w.get('a', obj('a', '5'))!.metadata.resourceVersion).toBe('5');
    w.deleted('a');
    expect(w.get('a', obj('a', '8'))).toBeUndefined();
    expect(w.get('a', undefined)).toBeUndefined();
    expect(w.get('a', obj('a', '10'))!.metadata.resourceVersion).toBe('10'); // re-created since: the cache's
  });
});
