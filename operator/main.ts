/** podfabric CLI: `podfabric controller [flags]` | `podfabric agent --node NAME [flags]`. */
import { log } from './lib/log.js';

const [cmd, ...rest] = process.argv.slice(2);
const usage = 'usage: podfabric controller [flags] | podfabric agent --node NAME [flags]';

async function main(): Promise<void> {
  switch (cmd) {
    case 'controller': {
      const { runController } = await import('./controller/main.js');
      return runController(rest);
    }
    case 'agent': {
      const { runAgent } = await import('./agent/main.js');
      return runAgent(rest);
    }
    case undefined:
    case '-h':
    case '--help':
      console.log(usage);
      return;
    default:
      console.error(`podfabric: unknown command ${cmd}\n${usage}`);
      process.exit(2);
  }
}

main().catch((e: Error) => {
  log.fatal({ err: e.message, stack: e.stack }, 'podfabric exited');
  process.exit(1);
});
