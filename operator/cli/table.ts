/** Text tables for the CLI and the lab: pure string layout. */

/** Columns padded to the widest cell, two spaces apart, like kubectl get. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, [...c].length)));
  return rows.map((row) => row.map((c, i) => c + ' '.repeat(widths[i]! - [...c].length)).join('  ').trimEnd()).join('\n');
}

/** A titled table after a blank line; `empty` instead of a table without rows. */
export function section(title: string, header: string[], rows: string[][], empty = '(none)'): string[] {
  return ['', title, rows.length === 0 ? empty : table([header, ...rows])];
}

export const clip = (s: string, n: number): string => ([...s].length > n ? `${[...s].slice(0, n - 1).join('')}…` : s);
export const yesNo = (b: boolean | null): string => (b === null ? '-' : b ? 'yes' : 'no');
