// npm run bench -- <name>: prints readable figures, then one JSON object with them as the last line.
const name = process.argv[2];
const benches: Record<string, () => Promise<unknown>> = {
  ipam: async () => (await import('./ipam.js')).main(),
  convergence: async () => (await import('./convergence.js')).main(),
  pods: async () => (await import('./pods.js')).main(),
  'services-plan': async () => (await import('./services-plan.js')).main(),
  policy: async () => (await import('./policy.js')).main(),
};
if (!name || !benches[name]) {
  console.error(`usage: npm run bench -- <${Object.keys(benches).join('|')}>`);
  process.exit(2);
}
const result = await benches[name]!();
console.log(JSON.stringify(result));
process.exit(0);
