import { pino, type Logger } from 'pino';

/** Root JSON logger. Child loggers name the object they work on: log.child({ kind: 'NodeFabric', name }). */
export const log: Logger = pino({
  level: process.env.PODFABRIC_LOG_LEVEL ?? (process.env.VITEST ? 'silent' : 'info'),
  base: { app: 'podfabric' },
  redact: { paths: ['password', '*.password', '*.authPassword', 'peer.password'], censor: '[redacted]' },
});

export type { Logger };
