#!/usr/bin/env node
// kubectl plugin entry point (kubectl runs an executable named kubectl-fabric on PATH as `kubectl fabric`):
// the compiled CLI (npm run build). `kubectl fabric status` | `node NAME` | `map -o fabric.svg`.
import('../build/operator/cli/fabric.js')
  .then((m) => m.main())
  .catch((e) => {
    console.error(e instanceof Error && e.code === 'ERR_MODULE_NOT_FOUND' ? 'kubectl-fabric: not built yet, run `npm run build`' : e);
    process.exit(2);
  });
