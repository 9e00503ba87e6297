// chart.js -- horizontal bar charts as inline SVG (no library): one bar per
// item, largest first, the label on the left and the count on the right.
// The SVG scales to its container (viewBox); the numbers are also in a
// visually hidden table for screen readers.
import { h, s, fmtInt } from './ui.js';

const W = 540, BAR_H = 22, GAP = 6, LABEL_W = 240, VALUE_W = 60; // a label of 30 characters fits LABEL_W

/** items: [{label, value}]; at most `top` bars, the rest summed as "others". */
export function barChart(title, items, { id, top = 12 } = {}) {
  const sorted = [...items].sort((a, b) => b.value - a.value || a.label.localeCompare(b.label));
  let shown = sorted.slice(0, top);
  if (sorted.length > top) shown.push({ label: `${sorted.length - top} others`, value: sorted.slice(top).reduce((n, x) => n + x.value, 0), other: true });
  const max = Math.max(1, ...shown.map((x) => x.value));
  const height = shown.length * (BAR_H + GAP) + GAP;
  const barW = W - LABEL_W - VALUE_W - 10;
  const titleId = (id || 'chart') + '-title';
  const svg = s('svg', { viewBox: `0 0 ${W} ${height}`, width: W, height, class: 'chart', role: 'img', 'aria-labelledby': titleId, preserveAspectRatio: 'xMinYMin meet' },
    shown.map((x, i) => {
      const y = GAP + i * (BAR_H + GAP);
      const w = Math.max(2, (barW * x.value) / max);
      const label = x.label.length > 30 ? x.label.slice(0, 29) + '…' : x.label;
      return s('g', { class: x.other ? 'other' : null },
        s('title', null, `${x.label}: ${fmtInt(x.value)}`),
        s('text', { x: LABEL_W - 8, y: y + BAR_H / 2, class: 'label', 'text-anchor': 'end', 'dominant-baseline': 'central' }, label),
        s('rect', { x: LABEL_W, y, width: w.toFixed(1), height: BAR_H, rx: 3, class: 'bar' }),
        s('text', { x: LABEL_W + w + 6, y: y + BAR_H / 2, class: 'value', 'dominant-baseline': 'central' }, fmtInt(x.value)));
    }));
  const table = h('table', { class: 'sr-only' }, h('tr', null, h('th', null, 'item'), h('th', null, 'count')),
    shown.map((x) => h('tr', null, h('td', null, x.label), h('td', null, String(x.value)))));
  return h('figure', { class: 'chart-box', id }, h('figcaption', { id: titleId }, title), svg, table);
}
