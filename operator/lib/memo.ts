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
