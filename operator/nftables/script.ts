/**
 * `nft -f` scripts for one private table (pure): the full ruleset (the table deleted and recreated in
 * the same transaction), and the delta between what was applied and what is desired — set and map
 * elements added/deleted one by one, a chain flushed and refilled only when its rules changed,
 * objects created before they are referenced and deleted after the last reference is gone. Every
 * command names the table, so nothing else is ever touched.
 */
import { chainSpec, mapElement, mapType, renderRule, setType, type Chain, type NftMap, type NftSet, type Ruleset } from '../policy/objects.js';

export interface Script {
  text: string;
  /** nft commands (lines) in the script. */
  statements: number;
  /** Set/map elements added or deleted, and rules written. */
  elements: number;
  rules: number;
  full: boolean;
}

const CHUNK = 2000;
const rendered = new WeakMap<Chain, string[]>();
const rulesOf = (c: Chain): string[] => {
  let r = rendered.get(c);
  if (!r) rendered.set(c, (r = c.rules.map(renderRule)));
  return r;
};

class Writer {
  readonly lines: string[] = [];
  elements = 0;
  rules = 0;
  constructor(readonly t: string) {}
  cmd(s: string) {
    this.lines.push(s);
  }
  elems(verb: 'add' | 'delete', obj: string, items: string[]) {
    for (let i = 0; i < items.length; i += CHUNK) this.cmd(`${verb} element ${this.t} ${obj} { ${items.slice(i, i + CHUNK).join(', ')} }`);
    this.elements += items.length;
  }
  addSet(s: NftSet) {
    this.cmd(`add set ${this.t} ${s.name} { type ${setType(s)}; }`);
  }
  addMap(m: NftMap) {
    this.cmd(`add map ${this.t} ${m.name} { type ${mapType(m)}; }`);
  }
  addChain(c: Chain) {
    this.cmd(`add chain ${this.t} ${c.name}${chainSpec(c)}`);
  }
  fill(c: Chain) {
    for (const r of rulesOf(c)) this.cmd(`add rule ${this.t} ${c.name} ${r}`);
    this.rules += c.rules.length;
  }
  done(full: boolean): Script {
    return { text: this.lines.length ? this.lines.join('\n') + '\n' : '', statements: this.lines.length, elements: this.elements, rules: this.rules, full };
  }
}

const mapItems = (m: NftMap, keys: string[]) => keys.map((k) => mapElement(k, m.elements[k]!));
const sameList = (a: string[], b: string[]) => a === b || (a.length === b.length && a.every((x, i) => x === b[i]));

/** Structural equality of plain data (rules are small trees of objects, arrays and primitives): cheaper than rendering. */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i]));
  const ka = Object.keys(a);
  const o = b as Record<string, unknown>;
  return ka.length === Object.keys(o).length && ka.every((k) => same((a as Record<string, unknown>)[k], o[k]));
}

/** The whole table, replacing whatever table of that name exists, in one transaction. */
export function fullScript(rs: Ruleset): Script {
  const w = new Writer(`inet ${rs.table}`);
  w.cmd(`add table inet ${rs.table}`);
  w.cmd(`delete table inet ${rs.table}`);
  w.cmd(`add table inet ${rs.table}`);
  for (const s of Object.values(rs.sets)) w.addSet(s);
  for (const m of Object.values(rs.maps)) w.addMap(m);
  for (const c of Object.values(rs.chains)) w.addChain(c);
  for (const s of Object.values(rs.sets)) w.elems('add', s.name, s.elements);
  for (const c of Object.values(rs.chains)) w.fill(c);
  for (const m of Object.values(rs.maps)) w.elems('add', m.name, mapItems(m, Object.keys(m.elements)));
  return w.done(true);
}

/** Only what changed from `applied` to `desired` (same table). Empty text when nothing did. */
export function deltaScript(applied: Ruleset, desired: Ruleset): Script {
  if (applied.table !== desired.table) throw new Error(`deltaScript: table ${applied.table} != ${desired.table}`);
  const w = new Writer(`inet ${desired.table}`);
  const newSets = Object.values(desired.sets).filter((s) => !applied.sets[s.name]);
  const newMaps = Object.values(desired.maps).filter((m) => !applied.maps[m.name]);
  const newChains = Object.values(desired.chains).filter((c) => !applied.chains[c.name]);
  const goneChains = Object.values(applied.chains).filter((c) => !desired.chains[c.name]);
  // 1. create what is new (empty), so that everything below may reference it
  for (const s of newSets) w.addSet(s);
  for (const m of newMaps) w.addMap(m);
  for (const c of newChains) w.addChain(c);
  // 2. map elements that go away or change verdict (before their chains may be deleted)
  const mapAdds: Array<[NftMap, string[]]> = [];
  for (const m of Object.values(desired.maps)) {
    const old = applied.maps[m.name];
    const before = old?.elements ?? {};
    const del = Object.keys(before).filter((k) => before[k] !== m.elements[k]);
    const add = Object.keys(m.elements).filter((k) => before[k] !== m.elements[k]);
    if (old && del.length) w.elems('delete', m.name, mapItems(old, del));
    if (add.length) mapAdds.push([m, add]);
  }
  // 3. set elements
  for (const s of Object.values(desired.sets)) {
    const old = applied.sets[s.name];
    if (old && sameList(old.elements, s.elements)) continue;
    const was = new Set(old?.elements ?? []);
    const now = new Set(s.elements);
    if (old) w.elems('delete', s.name, old.elements.filter((e) => !now.has(e)));
    w.elems('add', s.name, s.elements.filter((e) => !was.has(e)));
  }
  // 4. chains whose rules changed: flush and refill; new chains: fill
  for (const c of Object.values(desired.chains)) {
    const old = applied.chains[c.name];
    if (old && (same(old.rules, c.rules) || sameList(rulesOf(old), rulesOf(c)))) continue;
    if (old) w.cmd(`flush chain ${w.t} ${c.name}`);
    w.fill(c);
  }
  // 5. new map elements (their chains exist now)
  for (const [m, add] of mapAdds) w.elems('add', m.name, mapItems(m, add));
  // 6. obsolete chains: flush all first (they may jump to each other), then delete; then sets and maps
  for (const c of goneChains) w.cmd(`flush chain ${w.t} ${c.name}`);
  for (const c of goneChains) w.cmd(`delete chain ${w.t} ${c.name}`);
  for (const s of Object.values(applied.sets)) if (!desired.sets[s.name]) w.cmd(`delete set ${w.t} ${s.name}`);
  for (const m of Object.values(applied.maps)) if (!desired.maps[m.name]) w.cmd(`delete map ${w.t} ${m.name}`);
  return w.done(false);
}
