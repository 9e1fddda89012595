/**
 * A remembered pure function of a string (same input, same output), bounded: the map is cleared once it
 * holds `max` entries, a size no real cluster reaches in the places it is used.
 */
export function memo<V>(fn: (k: string) => V, max = 500_000): (k: string) => V {
  const m = new Map<string, V>();
  return (k: string): V => {
    let v = m.get(k);
    if (v === undefined) {
      if (m.size >= max) m.clear();
      m.set(k, (v = fn(k)));
    }
    return v;
  };
}

/**
 * The last call remembered: when `same(previous input, input)` the previous answer is returned without
 * calling `fn` (a pure function). One per caller: it holds one input and one answer.
 */
export function lastCall<I, O>(fn: (i: I) => O, same: (a: I, b: I) => boolean): (i: I) => O {
  let last: { i: I; o: O } | undefined;
  return (i: I): O => {
    if (last && same(last.i, i)) return last.o;
    const o = fn(i);
    last = { i, o };
    return o;
  };
}

/** The same elements in the same order (by identity: informer caches replace an object when it changes). */
export function sameElements(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}
