#!/usr/bin/env node
// Entry point: the compiled CLI (npm run build). `podfabric controller` | `podfabric agent --node NAME`.
import('../build/operator/main.js').catch((e) => {
  console.error(e instanceof Error && e.code === 'ERR_MODULE_NOT_FOUND' ? 'podfabric: not built yet, run `npm run build`' : e);
  process.exit(1);
});
