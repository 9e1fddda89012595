// Checks that the committed install (dist/) is what the cdk8s app synthesizes now with default options
// (the same App + chart code path `npm run synth` runs). `npm run synth:check`; exits 1 when stale.
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OUTPUT_FILE, synthInstall } from '../cdk8s/chart.js';

export const DIST_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');

/** Problems with dist/ (empty when it is up to date). */
export async function distProblems(): Promise<string[]> {
  const problems: string[] = [];
  const files = await readdir(DIST_DIR).catch(() => [] as string[]);
  for (const f of files) if (f !== OUTPUT_FILE) problems.push(`dist/${f} is not written by the chart`);
  const committed = await readFile(join(DIST_DIR, OUTPUT_FILE), 'utf8').catch(() => null);
  if (committed === null) problems.push(`dist/${OUTPUT_FILE} is missing`);
  else if (committed !== synthInstall()) problems.push(`dist/${OUTPUT_FILE} is stale`);
  return problems;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const problems = await distProblems();
  for (const p of problems) console.error(`${p}: run npm run synth (without PODFABRIC_VALUES) and commit dist/`);
  if (problems.length) process.exit(1);
  console.log('dist/ is up to date');
}
