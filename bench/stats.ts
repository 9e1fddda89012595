export function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
export const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

/** Runs f n times one after the other (f's own cleanup after each measured part is up to `after`); median ms. */
export async function medianMs(n: number, f: (i: number) => Promise<unknown>, after?: (i: number) => Promise<unknown>): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await f(i);
    xs.push(performance.now() - t0);
    await after?.(i);
  }
  return round(percentile(xs, 50));
}
