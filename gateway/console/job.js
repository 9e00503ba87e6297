// job.js -- one job: counters, progress, timings, dry run and error budget,
// its error and upload warnings, the cancel / reprocess buttons, the error
// summary (GET /jobs/{id}/errors: bar charts by code, by column and by both,
// and a table with each entry's first row and example; computed in the
// browser from the rejected rows only when a gateway without the endpoint
// answers 404), the rejected rows download (fetched with the tenant header
// and saved from a Blob) and the rejected rows table, paged with the API's
// after_row. The job follows its event stream while it runs, polled
// (poller.js) at a slower pace meanwhile and as the fallback.
import * as api from './api.js';
import { Poller } from './poller.js';
import { barChart } from './chart.js';
import { jobActions, dryRunTag } from './jobs.js';
import { fact } from './models.js';
import { h, fmtInt, fmtDuration, fmtTime, shortId, stateBadge, progressBar, errorBox, busy, budgetText, FINAL_STATES } from './ui.js';

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
  const downloads = downloadBox(id);
  const rejected = h('section', { id: 'rejected', 'aria-labelledby': 'rejected-h' }, h('h2', { id: 'rejected-h' }, 'Rejected rows'), downloads.el);
  view.append(head, err, info, summary, rejected);

  let job = null;
  let lastErrors = -1;
  const table = rejectedTable(id, ctx);
  rejected.append(table.el);

  // Shows a job state, from a poll or from the event stream.
  const apply = (j) => {
    const changed = JSON.stringify(j) !== JSON.stringify(job);
    job = j;
    if (changed) { renderInfo(); downloads.show(j.errors > 0); }
    if (j.errors !== lastErrors || (FINAL_STATES.has(j.state) && changed)) {
      lastErrors = j.errors;
      loadSummary(j);
      table.reload();
    }
    if (FINAL_STATES.has(j.state)) poller.stop(); // nothing changes any more
    return !FINAL_STATES.has(j.state);
  };
  // While a job runs the page follows its event stream (GET /jobs/{id}/events,
  // updates as they happen, at most ~10/s); polling goes on at its slowest
  // pace meanwhile, and takes over if the stream breaks off.
  let streaming = false;
  const follow = () => {
    if (streaming) return;
    streaming = true;
    api.watchJob(id, apply, ctx.signal).catch(() => {}).finally(() => { streaming = false; });
  };
  const poller = new Poller(async () => {
    const live = apply(await api.getJob(id, ctx.signal));
    if (live) follow();
    return live && !streaming;
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
      head.replaceChildren(h('h1', { tabindex: '-1' }, `Job ${shortId(j.job_id)} `, stateBadge(j.state), j.dry_run ? ' ' : null, dryRunTag(j)),
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
      j.dry_run ? h('p', { class: 'notice-line', id: 'job-dry-run' }, 'Dry run: rows validated and counted, no event published.') : null,
      warningsList(j.warnings),
      h('dl', { class: 'facts' },
        fact('Id', h('code', null, j.job_id)),
        fact('Model', h('a', { href: '#/models/' + j.model_id }, j.model_name || j.model_id)),
        fact('File', j.file_name),
        fact('Error budget', budgetText(j)),
        j.parent_job_id ? fact('Reprocesses', h('a', { href: '#/jobs/' + j.parent_job_id }, shortId(j.parent_job_id))) : null,
        fact('Created', fmtTime(j.created_at)), fact('Started', fmtTime(j.started_at)), fact('Finished', fmtTime(j.finished_at)),
        fact('Waiting', fmtDuration(j.waiting_ms)), fact('Processing', fmtDuration(j.processing_ms)),
        fact('Throughput', rate ? `${fmtInt(rate)} rows/s` : '—'), fact('Updated', fmtTime(j.updated_at)))].filter(Boolean));
  };

  let summaryRun = 0;
  let summaryEndpoint = true; // false once GET /jobs/{id}/errors answered 404 (an older gateway)
  const loadSummary = async (j) => {
    const run = ++summaryRun;
    const box = summary.querySelector('#summary-body');
    if (!j.errors) {
      box.replaceChildren(h('p', { class: 'muted', id: 'summary-empty' }, FINAL_STATES.has(j.state) ? 'No rejected rows: nothing to summarize.' : 'No rejected rows so far.'));
      return;
    }
    box.setAttribute('aria-busy', 'true');
    let entries = null;
    try {
      if (summaryEndpoint) {
        try {
          entries = await api.jobErrors(id, ctx.signal);
        } catch (e) {
          if (e.status !== 404) throw e;
          summaryEndpoint = false;
        }
      }
      if (run !== summaryRun) return; // a newer load took over
      if (entries) return showSummary(box, j, entries);
      const { cells, rows } = await readRejected(id, ctx.signal, () => run !== summaryRun);
      if (run !== summaryRun) return;
      showComputed(box, j, cells, rows);
    } catch (e) {
      if (e.name === 'AbortError' || run !== summaryRun) return;
      box.removeAttribute('aria-busy');
      box.replaceChildren(errorBox(e, 'Cannot read the error summary'));
    }
  };

  poller.start();
  return () => { poller.stop(); summaryRun++; };
}

/** Sums summary entries by a key: [{label, value}] for barChart. */
function sumBy(entries, key) {
  const m = new Map();
  for (const x of entries) m.set(key(x), (m.get(key(x)) || 0) + x.count);
  return [...m].map(([label, value]) => ({ label, value }));
}

const colName = (c) => c || '(row)';

/** The summary from GET /jobs/{id}/errors: three charts and the entries' table. */
function showSummary(box, j, entries) {
  box.removeAttribute('aria-busy');
  box.replaceChildren(
    h('p', { class: 'muted small', id: 'summary-note' },
      `${fmtInt(entries.length)} kind(s) of error in ${fmtInt(j.errors)} rejected row(s), counted by the job service (rows per code and column; a row can have several).`),
    h('div', { class: 'charts' },
      barChart('By error code', sumBy(entries, (x) => x.code), { id: 'chart-code' }),
      barChart('By column', sumBy(entries, (x) => colName(x.column)), { id: 'chart-column' }),
      barChart('By code and column', entries.map((x) => ({ label: `${x.code} · ${colName(x.column)}`, value: x.count })), { id: 'chart-pair', top: 8 })),
    h('table', { class: 'grid', id: 'summary-table' },
      h('thead', null, h('tr', null, ['Error', 'Column', 'Type', 'Rows', 'First row', 'Example', 'Message'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', null, entries.map((x) => h('tr', { dataset: { code: x.code, column: x.column } },
        h('td', { 'data-label': 'Error' }, h('span', { class: 'code-tag' }, x.code)),
        h('td', { 'data-label': 'Column' }, x.column ? h('code', null, x.column) : h('span', { class: 'muted' }, '(row)')),
        h('td', { 'data-label': 'Type' }, x.type || '—'),
        h('td', { 'data-label': 'Rows', class: 'num' }, fmtInt(x.count)),
        h('td', { 'data-label': 'First row', class: 'num' }, String(x.first_row)),
        h('td', { 'data-label': 'Example' }, x.example === null || x.example === undefined ? h('span', { class: 'muted' }, '(none)') : h('code', null, JSON.stringify(x.example))),
        h('td', { 'data-label': 'Message', class: 'message' }, x.message))))));
}

/** The rejected cells of (at most SUMMARY_MAX) rejected rows, for a gateway without the summary endpoint. */
async function readRejected(id, signal, stale) {
  const cells = [];
  let after = 0, rows = 0;
  for (;;) {
    const page = await api.listRejected(id, after, SUMMARY_PAGE, signal);
    if (stale()) break;
    cells.push(...page);
    const n = rowsOf(page);
    rows += n;
    if (n < SUMMARY_PAGE || rows >= SUMMARY_MAX) break;
    after = page[page.length - 1].row;
  }
  return { cells, rows };
}

/** The summary computed in the browser from the rejected cells read. */
function showComputed(box, j, cells, rows) {
  box.removeAttribute('aria-busy');
  const count = (key) => {
    const m = new Map();
    for (const c of cells) m.set(key(c), (m.get(key(c)) || 0) + 1);
    return [...m].map(([label, value]) => ({ label, value }));
  };
  box.replaceChildren(
    h('p', { class: 'muted small', id: 'summary-note' },
      `Bad cells counted in ${fmtInt(rows)} of ${fmtInt(j.errors)} rejected row(s)` +
      (rows < j.errors ? ' (the rows read so far; this gateway does not summarize)' : '') + '.'),
    h('div', { class: 'charts' },
      barChart('By error code', count((c) => c.error), { id: 'chart-code' }),
      barChart('By column', count((c) => colName(c.column)), { id: 'chart-column' }),
      barChart('By code and column', count((c) => `${c.error} · ${colName(c.column)}`), { id: 'chart-pair', top: 8 })));
}

/** The job's upload warnings (code, column, message), or null when none. */
function warningsList(warnings) {
  if (!warnings || !warnings.length) return null;
  return h('section', { id: 'job-warnings', class: 'warnings', 'aria-labelledby': 'warnings-h' },
    h('h2', { id: 'warnings-h' }, `Warnings (${warnings.length})`),
    h('table', { class: 'grid', id: 'warnings-table' },
      h('thead', null, h('tr', null, ['Code', 'Column', 'Message'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', null, warnings.map((w) => h('tr', { dataset: { code: w.code } },
        h('td', { 'data-label': 'Code' }, h('span', { class: 'code-tag' }, w.code)),
        h('td', { 'data-label': 'Column' }, w.column ? h('code', null, w.column) : h('span', { class: 'muted' }, '—')),
        h('td', { 'data-label': 'Message', class: 'message' }, w.message))))));
}


/** "Download rejected rows" (plain and annotated): fetched with the API's
 * headers (a link cannot send X-Tenant-ID), saved through an object URL. */
function downloadBox(id) {
  const status = h('span', { id: 'download-status', role: 'status', class: 'small' });
  const get = async (button, annotate) => {
    status.replaceChildren();
    try {
      const { blob, name } = await busy(button, () => api.downloadRejected(id, annotate));
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: annotate ? name.replace(/(\.[a-z]+)?$/, '-annotated$1') : name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      status.replaceChildren(h('span', { class: 'ok' }, `Saved ${a.download} (${blob.size.toLocaleString('en-US')} bytes).`));
    } catch (e) {
      status.replaceChildren(errorBox(e, 'Cannot download the rejected rows'));
    }
  };
  const plain = h('button', { type: 'button', id: 'download-rejected', onclick: () => get(plain, false) }, 'Download rejected rows');
  const annotated = h('button', { type: 'button', id: 'download-annotated', onclick: () => get(annotated, true) }, 'Download with annotations');
  const el = h('div', { class: 'row downloads', id: 'downloads', hidden: true }, plain, annotated,
    h('span', { class: 'muted small' }, 'as uploaded, to fix and upload again; annotations add _row and _errors'), status);
  return { el, show: (on) => { el.hidden = !on; } };
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
