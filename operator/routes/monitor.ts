import { spawn, type ChildProcess } from 'node:child_process';
import { validateProtocol } from './model.js';

/**
 * Calls onDeleted whenever the kernel deletes a route of our protocol that we did not ask to delete
 * (someone ran `ip route flush proto N`, a link went down): `ip monitor route`, both families. The agent
 * then re-syncs at once instead of at its next resync. Respawns the monitor if it dies; stop() ends it.
 */
export function watchRouteDeletions(opts: { protocol: number; netns?: string }, onDeleted: (line: string) => void): () => void {
  validateProtocol(opts.protocol);
  const args = [...(opts.netns ? ['-n', opts.netns] : []), 'monitor', 'route'];
  const ours = new RegExp(`\\bproto ${opts.protocol}\\b`);
  let stopped = false;
  let proc: ChildProcess | undefined;
  let timer: NodeJS.Timeout | undefined;
  const start = () => {
    if (stopped) return;
    proc = spawn('ip', args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.startsWith('Deleted') && ours.test(line)) onDeleted(line);
      }
    });
    proc.on('error', () => undefined);
    proc.on('close', () => {
      if (!stopped) timer = setTimeout(start, 1000);
    });
  };
  start();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    proc?.kill();
  };
}
