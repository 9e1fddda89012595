// npm run bench -- <name> [options]: prints readable figures, then one JSON object with them as the last line.
// Every benchmark builds what it runs first (bench/child.ts) and fails at once, with the child's own
// output, if a process it started exits while it is needed.
const [name, ...args] = process.argv.slice(2);
const benches: Record<string, (args: string[]) => Promise<unknown>> = {
  ipam: async (a) => (await import('./ipam.js')).main(a),
  'ipam-writes': async (a) => (await import('./ipam-writes.js')).main(a),
  'status-writes': async (a) => (await import('./status-writes.js')).main(a),
  agent: async (a) => (await import('./agent.js')).main(a),
  convergence: async () => (await import('./convergence.js')).main(),
  pods: async () => (await import('./pods.js')).main(),
  'services-plan': async () => (await import('./services-plan.js')).main(),
  services: async () => (await import('./services.js')).main(),
  policy: async () => (await import('./policy.js')).main(),
  scale: async (a) => (await import('./scale.js')).main(a),
};
if (!name || !benches[name]) {
  console.error(`usage: npm run bench -- <${Object.keys(benches).join('|')}> [options]
  ipam [--nodes N] [--qps Q [--burst B]]   (default 5000; the controller's 200/400)
  ipam-writes [--nodes N]   (default 1000)
  status-writes [--objects T] [--watches W] [--no-spec-cel]   (default 300, 5000)
  agent [--routes N] [--prefixes N]   (default 10000 each)
  scale [--nodes N] [--changes K] [--quiet SECONDS]   (default 500, 4, 300)`);
  process.exit(2);
}
if (name === 'scale') {
  const { ensureSimHeap, scaleNodes } = await import('./sim-heap.js');
  await ensureSimHeap(scaleNodes(args));
}
// Interrupted (Ctrl-C, kill): stop the apiservers and controllers it started, then exit as signalled.
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.once(sig, () => {
    console.error(`bench ${name}: ${sig}; stopping what it started`);
    void import('./child.js').then((c) => c.stopAllOnInterrupt()).finally(() => process.exit(code));
  });
}
try {
  const result = await benches[name]!(args);
  console.log(JSON.stringify(result));
  process.exit(0);
} catch (e) {
  console.error(`bench ${name} failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
