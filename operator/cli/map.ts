/**
 * `kubectl fabric map`: a standalone SVG of the fabric, built purely from a FabricSnapshot.
 * Racks side by side (at most RACKS_PER_ROW per row), each rack's nodes in a grid inside a frame,
 * the BGP peers (ToRs) in a row above the rack most of their sessions come from, one line per
 * session coloured by state, node boxes coloured by Ready, a legend and a title with counts.
 * Output is deterministic: stable ordering, integer coordinates, no timestamps.
 * Every element a test or a script may look for carries an id and data-* attributes.
 */
import { canonIP } from '../lib/ip.js';
import {
  byName,
  naturalCompare,
  nodeReady,
  rackOf,
  sessionsOf,
  type ConditionStatus,
  type FabricSnapshot,
  type SessionState,
} from './model.js';

export const SESSION_COLORS: Record<SessionState, string> = {
  Established: '#2e7d32',
  OpenConfirm: '#ef8f00',
  OpenSent: '#ef8f00',
  Active: '#ef8f00',
  Connect: '#ef8f00',
  Idle: '#c62828',
  Unknown: '#9e9e9e',
};

export const READY_COLORS: Record<ConditionStatus, { fill: string; stroke: string }> = {
  True: { fill: '#e8f5e9', stroke: '#2e7d32' },
  False: { fill: '#ffebee', stroke: '#c62828' },
  Unknown: { fill: '#eeeeee', stroke: '#757575' },
};

const PEER_COLORS = { fill: '#e3f2fd', stroke: '#1565c0' };

export interface MapNode {
  name: string;
  rack: string;
  cidr: string;
  ready: ConditionStatus;
  reason: string;
}

export interface MapPeer {
  address: string;
  name: string;
  asn: number | null;
  /** The rack most of its sessions come from (null: no sessions at all). */
  rack: string | null;
}

export interface MapSession {
  node: string;
  peer: string;
  state: SessionState;
}

export interface MapModel {
  racks: string[];
  nodes: MapNode[];
  peers: MapPeer[];
  sessions: MapSession[];
}

/** Who is where, sorted: the input of the layout. */
export function buildMapModel(s: FabricSnapshot): MapModel {
  const nfByName = new Map(s.nodeFabrics.map((n) => [n.metadata.name, n]));
  const nodeByName = new Map(s.nodes.map((n) => [n.metadata.name, n]));
  const names = [...new Set([...nodeByName.keys(), ...nfByName.keys()])].sort(naturalCompare);
  const nodes: MapNode[] = names.map((name) => {
    const nf = nfByName.get(name);
    const node = nodeByName.get(name);
    const ready = nodeReady(nf);
    const cidrs = nf?.spec.podCIDRs ?? node?.spec?.podCIDRs ?? [];
    return { name, rack: rackOf(node, nf), cidr: cidrs.join(',') || 'no pod CIDR', ready: ready.status, reason: ready.reason };
  });
  const sessions: MapSession[] = [];
  for (const name of names) {
    const nf = nfByName.get(name);
    if (nf) for (const x of sessionsOf(nf, s)) sessions.push({ node: name, peer: x.address, state: x.state });
  }
  const peerInfo = new Map<string, { name: string; asn: number | null }>();
  for (const p of [...s.peers].sort(byName)) {
    const a = canonIP(p.spec.peerAddress);
    if (!peerInfo.has(a)) peerInfo.set(a, { name: p.metadata.name, asn: p.spec.peerASN });
  }
  for (const x of sessions) if (!peerInfo.has(x.peer)) peerInfo.set(x.peer, { name: x.peer, asn: null });
  const racks = [...new Set(nodes.map((n) => n.rack))].sort(naturalCompare);
  const rackOfNode = new Map(nodes.map((n) => [n.name, n.rack]));
  const peers: MapPeer[] = [...peerInfo.entries()]
    .map(([address, info]) => {
      const counts = new Map<string, number>();
      for (const x of sessions) if (x.peer === address) counts.set(rackOfNode.get(x.node)!, (counts.get(rackOfNode.get(x.node)!) ?? 0) + 1);
      let rack: string | null = null;
      for (const r of racks) if ((counts.get(r) ?? 0) > (rack === null ? 0 : counts.get(rack)!)) rack = r;
      return { address, name: info.name, asn: info.asn, rack };
    })
    .sort((a, b) => naturalCompare(a.name, b.name) || naturalCompare(a.address, b.address));
  return { racks, nodes, peers, sessions };
}

// ---------------------------------------------------------------------------------------------
// layout

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface MapLayout {
  width: number;
  height: number;
  racks: Array<{ name: string; box: Box }>;
  nodes: Map<string, Box>;
  peers: Map<string, Box>;
  legend: Box;
}

const FONT = 12;
const SMALL = 11;
/** Monospace advance width per em, with margin (DejaVu Sans Mono measures 0.602). */
const CHAR_EM = 0.62;
const MAX_LABEL = 30;
const BOX_H = 44;
const PAD = 12;
const GAP = 12;
/** The rack's name sits in a footer, where no session line crosses it. */
const RACK_FOOTER = 26;
const LINE_GAP = 80;
const UNIT_GAP = 40;
const ROW_GAP = 40;
const TOP = 50;
const MARGIN = 20;
const LEGEND_H = 64;
const MAX_COLS = 4;
export const RACKS_PER_ROW = 4;

const textWidth = (s: string, size: number): number => Math.ceil([...s].length * size * CHAR_EM);
const clipLabel = (s: string): string => ([...s].length > MAX_LABEL ? `${[...s].slice(0, MAX_LABEL - 1).join('')}…` : s);

const rackLabel = (r: string): string => clipLabel(/^rack/i.test(r) ? r : `rack ${r}`);
const nodeLines = (n: MapNode): [string, string] => [clipLabel(n.name), clipLabel(n.cidr)];
const peerLines = (p: MapPeer): [string, string] => [clipLabel(p.name), clipLabel(`${p.address}${p.asn !== null ? ` AS${p.asn}` : ''}`)];
const boxWidth = (lines: Array<[string, string]>): number => Math.max(120, ...lines.map(([a, b]) => Math.max(textWidth(a, FONT), textWidth(b, SMALL)) + 2 * PAD));

const LEGEND_ITEMS: Array<{ kind: 'session' | 'node'; key: string; label: string; color: string; fill?: string }> = [
  { kind: 'session', key: 'Established', label: 'Established', color: SESSION_COLORS.Established },
  { kind: 'session', key: 'Active', label: 'Active/Connect/Open*', color: SESSION_COLORS.Active },
  { kind: 'session', key: 'Idle', label: 'Idle', color: SESSION_COLORS.Idle },
  { kind: 'session', key: 'Unknown', label: 'Unknown/no session', color: SESSION_COLORS.Unknown },
  { kind: 'node', key: 'True', label: 'node Ready', color: READY_COLORS.True.stroke, fill: READY_COLORS.True.fill },
  { kind: 'node', key: 'False', label: 'node not Ready', color: READY_COLORS.False.stroke, fill: READY_COLORS.False.fill },
  { kind: 'node', key: 'Unknown', label: 'node Unknown', color: READY_COLORS.Unknown.stroke, fill: READY_COLORS.Unknown.fill },
];
const LEGEND_ITEM_W = 34 + Math.max(...LEGEND_ITEMS.map((i) => textWidth(i.label, SMALL))) + 16;

export function layoutMap(m: MapModel, title = mapTitle(m)): MapLayout {
  const nodeW = boxWidth(m.nodes.map(nodeLines));
  const peerW = boxWidth(m.peers.map(peerLines));
  // Units: one per rack, plus one for peers without sessions.
  const units: Array<{ rack: string | null; nodes: MapNode[]; peers: MapPeer[] }> = m.racks.map((r) => ({
    rack: r,
    nodes: m.nodes.filter((n) => n.rack === r),
    peers: m.peers.filter((p) => p.rack === r),
  }));
  const loose = m.peers.filter((p) => p.rack === null);
  if (loose.length) units.push({ rack: null, nodes: [], peers: loose });

  const racks: MapLayout['racks'] = [];
  const nodes = new Map<string, Box>();
  const peers = new Map<string, Box>();
  let y = TOP;
  let width = MARGIN * 2 + textWidth(title, 16);
  for (let i = 0; i < units.length; i += RACKS_PER_ROW) {
    const row = units.slice(i, i + RACKS_PER_ROW);
    let x = MARGIN;
    let rowH = 0;
    for (const u of row) {
      const cols = Math.min(MAX_COLS, Math.max(1, u.nodes.length));
      const rows = Math.ceil(u.nodes.length / cols);
      const gridW = cols * nodeW + (cols - 1) * GAP;
      const peersW = u.peers.length * peerW + Math.max(0, u.peers.length - 1) * GAP;
      const label = u.rack === null ? '' : rackLabel(u.rack);
      const unitW = Math.max(gridW + 2 * PAD, peersW, textWidth(clipLabel(label), 13) + 2 * PAD);
      // Peers centred above the rack.
      let px = x + Math.floor((unitW - peersW) / 2);
      for (const p of u.peers) {
        peers.set(p.address, { x: px, y, w: peerW, h: BOX_H });
        px += peerW + GAP;
      }
      let unitH = u.peers.length ? BOX_H : 0;
      if (u.rack !== null) {
        const ry = y + BOX_H + LINE_GAP;
        const rh = PAD + rows * BOX_H + Math.max(0, rows - 1) * GAP + RACK_FOOTER;
        racks.push({ name: u.rack, box: { x, y: ry, w: unitW, h: rh } });
        const gx = x + Math.floor((unitW - gridW) / 2);
        u.nodes.forEach((n, k) => {
          nodes.set(n.name, { x: gx + (k % cols) * (nodeW + GAP), y: ry + PAD + Math.floor(k / cols) * (BOX_H + GAP), w: nodeW, h: BOX_H });
        });
        unitH = ry + rh - y;
      }
      rowH = Math.max(rowH, unitH);
      x += unitW + UNIT_GAP;
    }
    width = Math.max(width, x - UNIT_GAP + MARGIN);
    y += rowH + ROW_GAP;
  }
  const perRow = Math.max(1, Math.floor((width - 2 * MARGIN) / LEGEND_ITEM_W));
  const legendRows = Math.ceil(LEGEND_ITEMS.length / perRow);
  const legend = { x: MARGIN, y, w: Math.min(LEGEND_ITEMS.length, perRow) * LEGEND_ITEM_W, h: 24 + legendRows * 20 };
  width = Math.max(width, legend.w + 2 * MARGIN);
  const height = y + Math.max(LEGEND_H, legend.h) + MARGIN;
  return { width, height, racks, nodes, peers, legend };
}

// ---------------------------------------------------------------------------------------------
// SVG

export function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

export function mapTitle(m: MapModel): string {
  const ready = m.nodes.filter((n) => n.ready === 'True').length;
  const up = m.sessions.filter((x) => x.state === 'Established').length;
  return `podfabric: ${m.nodes.length} nodes (${ready} ready) in ${m.racks.length} racks, ${m.peers.length} BGP peers, ${up}/${m.sessions.length} sessions established`;
}

/** The whole picture as a standalone SVG document. */
export function renderMap(s: FabricSnapshot): string {
  const m = buildMapModel(s);
  const title = mapTitle(m);
  const L = layoutMap(m, title);
  const e = xmlEscape;
  const out: string[] = [];
  out.push(
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${L.width}" height="${L.height}" viewBox="0 0 ${L.width} ${L.height}" font-family="DejaVu Sans Mono, monospace" data-nodes="${m.nodes.length}" data-racks="${m.racks.length}" data-peers="${m.peers.length}" data-sessions="${m.sessions.length}">`,
    `<title>${e(title)}</title>`,
    `<rect id="background" x="0" y="0" width="${L.width}" height="${L.height}" fill="#ffffff"/>`,
    `<text id="title" x="${MARGIN}" y="30" font-size="16" font-weight="bold" fill="#212121">${e(title)}</text>`,
  );
  out.push('<g id="racks">');
  for (const r of L.racks) {
    const b = r.box;
    out.push(
      `<g class="rack" id="rack-${e(r.name)}" data-rack="${e(r.name)}">`,
      `<rect class="rack-box" x="${b.x}" y="${b.y}" width="${b.w}" height="${b.h}" rx="6" fill="#fafafa" stroke="#bdbdbd" stroke-dasharray="4 3"/>`,
      `<text class="rack-label" x="${b.x + PAD}" y="${b.y + b.h - 8}" font-size="13" font-weight="bold" fill="#616161">${e(rackLabel(r.name))}</text>`,
      '</g>',
    );
  }
  out.push('</g>', '<g id="sessions">');
  for (const x of m.sessions) {
    const n = L.nodes.get(x.node);
    const p = L.peers.get(x.peer);
    if (!n || !p) continue;
    const x1 = n.x + Math.floor(n.w / 2);
    const x2 = p.x + Math.floor(p.w / 2);
    const id = `${x.node}->${x.peer}`;
    out.push(
      `<line class="session" id="session-${e(id)}" data-session="${e(id)}" data-node="${e(x.node)}" data-peer="${e(x.peer)}" data-state="${x.state}" x1="${x1}" y1="${n.y}" x2="${x2}" y2="${p.y + p.h}" stroke="${SESSION_COLORS[x.state]}" stroke-width="2"${x.state === 'Unknown' ? ' stroke-dasharray="5 4"' : ''}><title>${e(`${x.node} → ${x.peer}: ${x.state}`)}</title></line>`,
    );
  }
  out.push('</g>', '<g id="peers">');
  for (const p of m.peers) {
    const b = L.peers.get(p.address)!;
    const [l1, l2] = peerLines(p);
    out.push(
      `<g class="peer" id="peer-${e(p.address)}" data-peer="${e(p.address)}" data-peer-name="${e(p.name)}">`,
      `<title>${e(`BGPPeer ${p.name} ${p.address}${p.asn !== null ? ` AS${p.asn}` : ''}`)}</title>`,
      `<rect class="peer-box" x="${b.x}" y="${b.y}" width="${b.w}" height="${b.h}" rx="4" fill="${PEER_COLORS.fill}" stroke="${PEER_COLORS.stroke}" stroke-width="1.5"/>`,
      `<text class="label peer-name" x="${b.x + PAD}" y="${b.y + 18}" font-size="${FONT}" font-weight="bold" fill="#0d47a1">${e(l1)}</text>`,
      `<text class="label peer-address" x="${b.x + PAD}" y="${b.y + 35}" font-size="${SMALL}" fill="#0d47a1">${e(l2)}</text>`,
      '</g>',
    );
  }
  out.push('</g>', '<g id="nodes">');
  for (const n of m.nodes) {
    const b = L.nodes.get(n.name)!;
    const c = READY_COLORS[n.ready];
    const [l1, l2] = nodeLines(n);
    out.push(
      `<g class="node" id="node-${e(n.name)}" data-node="${e(n.name)}" data-rack="${e(n.rack)}" data-ready="${n.ready}">`,
      `<title>${e(`${n.name} ${n.cidr} Ready=${n.ready}${n.ready === 'True' ? '' : ` (${n.reason})`}`)}</title>`,
      `<rect class="node-box" x="${b.x}" y="${b.y}" width="${b.w}" height="${b.h}" rx="4" fill="${c.fill}" stroke="${c.stroke}" stroke-width="1.5"/>`,
      `<text class="label node-name" x="${b.x + PAD}" y="${b.y + 18}" font-size="${FONT}" font-weight="bold" fill="#212121">${e(l1)}</text>`,
      `<text class="label node-cidr" x="${b.x + PAD}" y="${b.y + 35}" font-size="${SMALL}" fill="#424242">${e(l2)}</text>`,
      '</g>',
    );
  }
  out.push('</g>');
  const lg = L.legend;
  const perRow = Math.max(1, Math.floor(lg.w / LEGEND_ITEM_W));
  out.push(`<g id="legend" data-legend="true">`, `<text x="${lg.x}" y="${lg.y + 12}" font-size="${SMALL}" font-weight="bold" fill="#424242">legend</text>`);
  LEGEND_ITEMS.forEach((it, i) => {
    const ix = lg.x + (i % perRow) * LEGEND_ITEM_W;
    const iy = lg.y + 30 + Math.floor(i / perRow) * 20;
    out.push(
      `<g class="legend-item" data-legend-${it.kind}="${it.key}">`,
      it.kind === 'session'
        ? `<line x1="${ix}" y1="${iy - 4}" x2="${ix + 26}" y2="${iy - 4}" stroke="${it.color}" stroke-width="2"${it.key === 'Unknown' ? ' stroke-dasharray="5 4"' : ''}/>`
        : `<rect x="${ix}" y="${iy - 11}" width="26" height="14" rx="2" fill="${it.fill}" stroke="${it.color}" stroke-width="1.5"/>`,
      `<text x="${ix + 34}" y="${iy}" font-size="${SMALL}" fill="#424242">${e(it.label)}</text>`,
      '</g>',
    );
  });
  out.push('</g>', '</svg>', '');
  return out.join('\n');
}
