/**
 * Headless Chromium (Debian package `chromium`, installed by hack/install-deps.sh) for tests that
 * render a page and read back what the browser computed: `dumpDom` runs the page's scripts (with a
 * virtual-time budget, so timers and load handlers finish) and returns the serialized DOM.
 * A missing browser is an error, never a skip.
 */
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { run } from '../../operator/lib/exec.js';

const NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

/** The browser's path; throws (never skips) when none is installed. */
export function chromiumBinary(): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    for (const n of NAMES) {
      const p = join(dir, n);
      try {
        accessSync(p, constants.X_OK);
        return p;
      } catch {
        // not here
      }
    }
  }
  throw new Error(`no headless browser on PATH (looked for ${NAMES.join(', ')}): install Debian's chromium (bash hack/install-deps.sh)`);
}

/** Runs chromium --headless with a throwaway profile; resolves with stdout. */
async function headless(args: string[], timeoutMs: number): Promise<string> {
  const profile = await mkdtemp(join(tmpdir(), 'pf-chromium-'));
  try {
    const r = await run(
      [
        chromiumBinary(),
        '--headless',
        '--no-sandbox', // tests run as root; the sandbox refuses root
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--no-first-run',
        '--no-default-browser-check',
        '--hide-scrollbars',
        `--user-data-dir=${profile}`,
        ...args,
      ],
      { timeoutMs, allowFail: true },
    );
    if (r.code !== 0) throw new Error(`chromium ${args.join(' ')} exited ${r.code}: ${r.stderr.slice(-2000)}`);
    return r.stdout;
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}

/** Loads url, lets its scripts run for up to budgetMs of virtual time, returns the DOM as HTML. */
export function dumpDom(url: string, opts: { budgetMs?: number; timeoutMs?: number } = {}): Promise<string> {
  return headless([`--virtual-time-budget=${opts.budgetMs ?? 5000}`, '--dump-dom', url], opts.timeoutMs ?? 60_000);
}

/** Loads url and writes a PNG screenshot of a width x height window to file. */
export async function screenshot(url: string, file: string, opts: { width: number; height: number; timeoutMs?: number }): Promise<void> {
  await headless([`--window-size=${opts.width},${opts.height}`, `--screenshot=${file}`, '--virtual-time-budget=2000', url], opts.timeoutMs ?? 60_000);
}
