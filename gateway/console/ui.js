// ui.js -- small DOM helpers shared by the pages: element builders (text is
// always set as text, never parsed as HTML), number/time formats as batchcli
// prints them, notices, the confirm dialog, state badges and the job
// progress bar of the guide (valid, rejected, unprocessed).

const SVG_NS = 'http://www.w3.org/2000/svg';

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

function setProps(el, props, svg) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (!svg && (k === 'value' || k === 'checked' || k === 'disabled' || k === 'selected')) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

/** h('a', {href: '#/jobs', class: 'x'}, 'text', child, [more]) */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props, false);
  append(el, children);
  return el;
}

/** The same for SVG elements. */
export function s(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setProps(el, props, true);
  append(el, children);
  return el;
}

export const fmtInt = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—');

/** Milliseconds as batchcli shows them: mm:ss, h:mm:ss past an hour. */
export function fmtDuration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  const t = Math.floor(ms / 1000);
  const hh = Math.floor(t / 3600), mm = Math.floor((t % 3600) / 60), ss = t % 60;
  const two = (x) => String(x).padStart(2, '0');
  return hh ? `${hh}:${two(mm)}:${two(ss)}` : `${two(mm)}:${two(ss)}`;
}

export function fmtBytes(n) {
  if (!Number.isFinite(n)) return '—';
  if (n < 1024) return n + ' B';
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n, i = -1;
  do { v /= 1024; i++; } while (v >= 1024 && i < units.length - 1);
  return v.toFixed(v < 10 ? 2 : 1) + ' ' + units[i];
}

/** An API time (ISO-8601 UTC) in the browser's time zone; '—' for null. */
export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** An error budget (a model's defaults or a job's: max_errors, max_error_rate) in words; "none" without one. */
export function budgetText(m) {
  const parts = [];
  if (m && Number.isFinite(m.max_errors)) parts.push(`at most ${m.max_errors.toLocaleString('en-US')} rejected row(s)`);
  if (m && Number.isFinite(m.max_error_rate)) parts.push(`at most ${+(m.max_error_rate * 100).toFixed(4)}% of processed rows rejected`);
  return parts.length ? parts.join(', ') : 'none';
}

export const shortId = (id) => (id ? id.slice(0, 8) : '');

export const FINAL_STATES = new Set(['SUCCESS', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED']);
export const STATES = ['PENDING', 'RUNNING', 'SUCCESS', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED'];

export function stateBadge(state) {
  return h('span', { class: ['badge', 'st-' + String(state).toLowerCase()] }, state);
}

/**
 * The job's progress as in the guide's PROGRESS column: valid rows, then
 * rejected ones, then the rows not processed yet (cancelled: what will
 * never be). The percentage is valid / total, as batchcli prints it.
 */
export function progressBar(job) {
  const total = Math.max(0, job.total || 0);
  const valid = Math.min(job.success || 0, total);
  const rejected = Math.min(job.errors || 0, total - valid);
  const rest = Math.max(0, total - valid - rejected);
  const pct = (n) => (total ? (100 * n) / total : 0);
  const cancelled = job.state === 'CANCELLED';
  const label = total
    ? `${fmtInt(valid)} valid, ${fmtInt(rejected)} rejected, ${fmtInt(rest)} ${cancelled ? 'not processed (cancelled)' : 'unprocessed'} of ${fmtInt(total)} rows`
    : 'no rows counted yet';
  const seg = (cls, n) => {
    const el = h('span', { class: 'seg ' + cls });
    el.style.width = pct(n).toFixed(3) + '%';
    return el;
  };
  const bar = h('span', { class: 'pbar', role: 'img', 'aria-label': label, title: label },
    seg('valid', valid), seg('rejected', rejected), seg(cancelled ? 'cancelled' : 'unprocessed', rest));
  return h('span', { class: 'progress' }, bar, h('span', { class: 'pct' }, Math.floor(pct(valid)) + '%'));
}

/** A readable error box for any failure (ApiError or not). */
export function errorBox(err, prefix) {
  const msg = err && err.readable ? err.readable : (err && err.message) || String(err);
  return h('div', { class: 'error', role: 'alert' }, prefix ? prefix + ': ' : '', msg);
}

/** A notice at the top of the page for a few seconds (kind: ok, error). */
export function notify(text, kind = 'ok', node = null) {
  const box = document.getElementById('notices');
  const n = h('div', { class: 'notice ' + kind }, text, node ? [' ', node] : null,
    h('button', { type: 'button', class: 'link', 'aria-label': 'dismiss', onclick: () => n.remove() }, '×'));
  box.append(n);
  setTimeout(() => n.remove(), kind === 'error' ? 15000 : 8000);
  return n;
}

/** Asks a yes/no question in the page's dialog; resolves true for yes. */
export function confirmDialog(text, yesLabel = 'Confirm') {
  const dlg = document.getElementById('confirm');
  const yes = document.getElementById('confirm-yes');
  const no = document.getElementById('confirm-no');
  document.getElementById('confirm-text').textContent = text;
  yes.textContent = yesLabel;
  const back = document.activeElement;
  return new Promise((resolve) => {
    const done = (v) => {
      yes.removeEventListener('click', onYes);
      no.removeEventListener('click', onNo);
      dlg.removeEventListener('cancel', onNo);
      if (dlg.open) dlg.close();
      if (back && back.focus) back.focus();
      resolve(v);
    };
    const onYes = () => done(true);
    const onNo = (ev) => { if (ev) ev.preventDefault(); done(false); };
    yes.addEventListener('click', onYes);
    no.addEventListener('click', onNo);
    dlg.addEventListener('cancel', onNo); // Escape
    dlg.showModal();
    no.focus();
  });
}

/** A "busy" state for a button while a promise runs. */
export async function busy(button, fn) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await fn();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

/** Parses "#/jobs/ID?x=1" into {parts: ['jobs', 'ID'], query: URLSearchParams}. */
export function parseHash(hash) {
  const raw = hash.replace(/^#\/?/, '');
  const [path, qs = ''] = raw.split('?');
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(qs) };
}

export function setQuery(base, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const qs = q.toString();
  return base + (qs ? '?' + qs : '');
}
