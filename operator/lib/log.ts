import { pino, type Logger } from 'pino';

const options = {
  base: { app: 'podfabric' },
  redact: { paths: ['password', '*.password', '*.authPassword', 'peer.password'], censor: '[redacted]' },
};

/** Root JSON logger. Child loggers name the object they work on: log.child({ kind: 'NodeFabric', name }). */
export const log: Logger = pino({ level: process.env.PODFABRIC_LOG_LEVEL ?? (process.env.VITEST ? 'silent' : 'info'), ...options });

export type { Logger };

let syncRoot: Logger | undefined;
/**
 * The same logger writing synchronously to stdout: for the last line before a process kills itself
 * (SIGKILL runs no flush, and the root logger writes asynchronously).
 */
export function lastWordsLog(): Logger {
  syncRoot ??= pino({ level: log.level, ...options }, pino.destination({ dest: 1, sync: true }));
  return syncRoot;
}
