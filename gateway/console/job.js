// job.js -- one job: counters, progress, timings, its error, the cancel /
// reprocess buttons, the error summary (bar charts by code, by column and
// by both, computed in the browser from the rejected rows read so far: the
// API has no summary endpoint yet) and the rejected rows table, paged with
// the API's after_row. The job is polled (poller.js) until it finishes.
import * as api from './api.js';
import { Poller } from './poller.js';
import { barChart } from './chart.js';
import { jobActions } from './jobs.js';
import { fact } from './models.js';
import { h, fmtInt, fmtDuration, fmtTime, shortId, stateBadge, progressBar, errorBox, FINAL_STATES } from './ui.js';

const SUMMARY_PAGE = 1000; // rows a summary request reads
const SUMMARY_MAX = 20000; // rows the summary reads at most (the rest is counted, not read)
const PAGE_SIZES = [25, 100, 500];

/** The distinct rows of a page of rejected cells. */
const rowsOf = (cells) => new Set(cells.map((c) => c.row)).size;

function observed(c) {
  if (!('observed' in c)) return h('span', { class: 'muted' }, '(none)');
  return h('code', null, typeof c.observed === 'string' ? JSON.stringify(c.observed) : JSON.stringify(c.observed));
}

export async function page(view, ctx, id) {
  const head = h('div', { class: 'page-head' }, h('h1', { tabindex: '-1' }, `Job ${shortId(id)}`));
  const err = h('div', { id: 'job-error' });
  const info = h('div', { id: 'job-info' }, h('p', { class: 'muted' }, 'Loading the job…'));
  const summary = h('section', { id: 'summary', 'aria-labelledby': 'summary-h' },
    h('h2', { id: 'summary-h' }, 'Error summary'), h('div', { id: 'summary-body' }));
  const rejected = h('section', { id: 'rejected', 'aria-labelledby': 'rejected-h' }, h('h2', { id: 'rejected-h' }, 'Rejected rows'));
  view.append(head, err, info, summary, rejected);

  let job = null;
  let lastErrors = -1;
  const table = rejectedTable(id, ctx);
  rejected.append(table.el);

  const poller = new Poller(async () => {
    const j = await api.getJob(id, ctx.signal);
    const changed = JSON.stringify(j) !== JSON.stringify(job);
    job = j;
    if (changed) renderInfo();
    if (j.errors !== lastErrors || (FINAL_STATES.has(j.state) && changed)) {
      lastErrors = j.errors;
      loadSummary(j);
      table.reload();
    }
    if (FINAL_STATES.has(j.state)) poller.stop(); // nothing changes any more
    return !FINAL_STATES.has(j.state);
  }, {
    onError: (e, delay) => {
      if (!e) return err.replaceChildren();
      if (!job) { // never loaded: a plain error page (404 for another tenant's job)
        poller.stop();
        info.replaceChildren(errorBox(e, `Cannot load job ${id}`), h('p', null, h('a', { href: '#/jobs' }, 'Back to the jobs')));
        summary.hidden = rejected.hidden = true;
        return;
      }
      err.replaceChildren(errorBox(e, `Cannot refresh the job (next try in ${Math.round(delay / 1000)} s)`));
    },
  });

  let headKey = '';
  const renderInfo = () => {
    const j = job;
    // the heading and its buttons change only with the state: a click is never lost to a refresh
    const key = `${j.state}/${j.errors > 0}`;
    if (key !== headKey) {
      headKey = key;
      ctx.title(`Job ${shortId(j.job_id)}`);
      head.replaceChildren(h('h1', { tabindex: '-1' }, `Job ${shortId(j.job_id)} `, stateBadge(j.state)),
        h('div', { class: 'actions', id: 'job-actions' }, jobActions(j, () => poller.kick())));
    }
    const unprocessed = Math.max(0, j.total - j.success - j.errors);
    const rate = j.processing_ms > 0 ? ((j.success + j.errors) * 1000) / j.processing_ms : 0;
    info.replaceChildren(...[ // (replaceChildren would print a null)
      h('div', { class: 'cards', id: 'job-counters' },
        card('Total rows', fmtInt(j.total), 'total'), card('Valid', fmtInt(j.success), 'valid'),
        card('Rejected', fmtInt(j.errors), 'rejected'), card(j.state === 'CANCELLED' ? 'Not processed' : 'Unprocessed', fmtInt(unprocessed), 'unprocessed')),
      h('div', { class: 'job-progress' }, progressBar(j)),
      j.error ? h('div', { class: 'error', role: 'alert', id: 'job-failure' }, 'Job error: ' + j.error) : null,
      h('dl', { class: 'facts' },
        fact('Id', h('code', null, j.job_id)),
        fact('Model', h('a', { href: '#/models/' + j.model_id }, j.model_name || j.model_id)),
        fact('File', j.file_name),
        j.parent_job_id ? fact('Reprocesses', h('a', { href: '#/jobs/' + j.parent_job_id }, shortId(j.parent_job_id))) : null,
        fact('Created', fmtTime(j.created_at)), fact('Started', fmtTime(j.started_at)), fact('Finished', fmtTime(j.finished_at)),
        fact('Waiting', fmtDuration(j.waiting_ms)), fact('Processing', fmtDuration(j.processing_ms)),
        fact('Throughput', rate ? `${fmtInt(rate)} rows/s` : '—'), fact('Updated', fmtTime(j.updated_at)))].filter(Boolean));
  };

  let summaryRun = 0;
  const loadSummary = async (j) => {
    const run = ++summaryRun;
    const box = summary.querySelector('#summary-body');
    if (!j.errors) {
      box.replaceChildren(h('p', { class: 'muted', id: 'summary-empty' }, FINAL_STATES.has(j.state) ? 'No rejected rows: nothing to summarize.' : 'No rejected rows so far.'));
      return;
    }
    box.setAttribute('aria-busy', 'true');
    const cells = [];
    let after = 0, rows = 0;
    try {
      for (;;) {
        const page = await api.listRejected(id, after, SUMMARY_PAGE, ctx.signal);
        if (run !== summaryRun) return; // a newer load took over
        cells.push(...page);
        const n = rowsOf(page);
        rows += n;
        if (n < SUMMARY_PAGE || rows >= SUMMARY_MAX) break;
        after = page[page.length - 1].row;
      }
    } catch (e) {
      if (e.name === 'AbortError') return;
      box.removeAttribute('aria-busy');
      box.replaceChildren(errorBox(e, 'Cannot read the rejected rows for the summary'));
      return;
    }
    box.removeAttribute('aria-busy');
    const count = (key) => {
      const m = new Map();
      for (const c of cells) m.set(key(c), (m.get(key(c)) || 0) + 1);
      return [...m].map(([label, value]) => ({ label, value }));
    };
    box.replaceChildren(
      h('p', { class: 'muted small', id: 'summary-note' },
        `Bad cells counted in ${fmtInt(rows)} of ${fmtInt(j.errors)} rejected row(s)` +
        (rows < j.errors ? ' (the rows read so far; the server does not summarize yet)' : '') + '.'),
      h('div', { class: 'charts' },
        barChart('By error code', count((c) => c.error), { id: 'chart-code' }),
        barChart('By column', count((c) => c.column || '(row)'), { id: 'chart-column' }),
        barChart('By code and column', count((c) => `${c.error} · ${c.column || '(row)'}`), { id: 'chart-pair', top: 8 })));
  };

  poller.start();
  return () => { poller.stop(); summaryRun++; };
}

function card(label, value, cls) {
  return h('div', { class: 'card ' + cls }, h('div', { class: 'card-value' }, value), h('div', { class: 'card-label' }, label));
}

/** The rejected rows table with after_row paging (a stack of the pages' starts for "previous"). */
function rejectedTable(id, ctx) {
  let size = 100;
  let starts = [0]; // after_row of each page seen; the last is the current page
  let run = 0;
  const sizeSel = h('select', { id: 'rejected-size' }, PAGE_SIZES.map((n) => h('option', { value: String(n), selected: n === size }, `${n} rows a page`)));
  const prev = h('button', { type: 'button', id: 'rejected-prev', disabled: true }, '← Previous');
  const next = h('button', { type: 'button', id: 'rejected-next', disabled: true }, 'Next →');
  const where = h('span', { id: 'rejected-where', role: 'status', class: 'muted small' });
  const body = h('div', { id: 'rejected-body' });
  const el = h('div', null, h('div', { class: 'row pager' }, h('label', { for: 'rejected-size', class: 'sr-only' }, 'Page size'), sizeSel, prev, next, where), body);

  const load = async () => {
    const r = ++run;
    const after = starts[starts.length - 1];
    body.setAttribute('aria-busy', 'true');
    let cells;
    try {
      cells = await api.listRejected(id, after, size, ctx.signal);
    } catch (e) {
      if (e.name === 'AbortError' || r !== run) return;
      body.removeAttribute('aria-busy');
      body.replaceChildren(errorBox(e, 'Cannot read the rejected rows'));
      return;
    }
    if (r !== run) return;
    body.removeAttribute('aria-busy');
    const n = rowsOf(cells);
    prev.disabled = starts.length < 2;
    next.disabled = n < size;
    next.dataset.after = cells.length ? String(cells[cells.length - 1].row) : '';
    if (!cells.length) {
      where.textContent = starts.length > 1 ? 'No more rejected rows.' : '';
      body.replaceChildren(h('p', { class: 'muted', id: 'rejected-empty' }, starts.length > 1 ? 'No rows after this point.' : 'No rejected rows.'));
      return;
    }
    where.textContent = `Page ${starts.length}: rows ${fmtInt(cells[0].row)}–${fmtInt(cells[cells.length - 1].row)} (${fmtInt(n)} row(s), ${fmtInt(cells.length)} bad cell(s))`;
    body.replaceChildren(h('table', { class: 'grid', id: 'rejected-table' },
      h('thead', null, h('tr', null, ['Row', 'Event id', 'Column', 'Type', 'Error', 'Observed', 'Message'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', null, cells.map((c) => h('tr', null,
        h('td', { 'data-label': 'Row', class: 'num' }, String(c.row)),
        h('td', { 'data-label': 'Event id' }, c.event_id || h('span', { class: 'muted' }, '—')),
        h('td', { 'data-label': 'Column' }, h('code', null, c.column)),
        h('td', { 'data-label': 'Type' }, c.type || '—'),
        h('td', { 'data-label': 'Error' }, h('span', { class: 'code-tag' }, c.error)),
        h('td', { 'data-label': 'Observed' }, observed(c)),
        h('td', { 'data-label': 'Message', class: 'message' }, c.message))))));
  };
  prev.addEventListener('click', () => { if (starts.length > 1) { starts.pop(); load(); } });
  next.addEventListener('click', () => { if (next.dataset.after) { starts.push(+next.dataset.after); load(); } });
  sizeSel.addEventListener('change', () => { size = +sizeSel.value; starts = [0]; load(); });
  return { el, reload: load };
}
