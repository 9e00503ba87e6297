// jobs.js -- the Jobs page: a live list (state, counters, the progress bar,
// waiting and processing times) with filters by state (the API's ?state=)
// and by model (in the browser: the API has no model filter), kept current
// by a Poller (poller.js: 1 s while a job is running, backing off to 30 s
// when nothing changes), and the cancel / reprocess buttons with the API's
// answers (a 409 said with what to do about it). Dry runs are marked. The
// job actions and the dry-run tag are shared with the job page.
import * as api from './api.js';
import { Poller } from './poller.js';
import { h, fmtInt, fmtDuration, fmtTime, shortId, stateBadge, progressBar, errorBox, notify, confirmDialog,
  busy, FINAL_STATES, STATES, setQuery } from './ui.js';

const LIMITS = [50, 200, 1000, 0];

/** Cancel / reprocess buttons for a job; `after` runs once the API answered. */
export function jobActions(job, after) {
  const out = [];
  if (!FINAL_STATES.has(job.state)) {
    const b = h('button', { type: 'button', class: 'small danger', dataset: { action: 'cancel', job: job.job_id },
      onclick: () => cancel(job, b, after) }, 'Cancel');
    out.push(b);
  }
  if (FINAL_STATES.has(job.state) && job.errors > 0) {
    const b = h('button', { type: 'button', class: 'small', dataset: { action: 'reprocess', job: job.job_id },
      onclick: () => reprocess(job, b, after) }, 'Reprocess');
    out.push(b);
  }
  return out;
}

async function cancel(job, button, after) {
  const ok = await confirmDialog(`Cancel job ${shortId(job.job_id)} (${job.file_name})? Rows not processed yet will not be.`, 'Cancel job');
  if (!ok) return;
  try {
    const r = await busy(button, () => api.cancelJob(job.job_id));
    notify(`Job ${shortId(job.job_id)}: ${r && r.status ? r.status : 'cancelled'} (DELETE /jobs/${shortId(job.job_id)}… answered 200).`);
  } catch (e) {
    notify(`Job ${shortId(job.job_id)} was not cancelled: ${e.readable || e}`, 'error');
  }
  after();
}

/** What to do about POST /jobs/{id}/reprocess's 409 (services/job/job_upload.c's messages). */
export function reprocessHint(e) {
  if (e.status !== 409) return '';
  if (/still running/.test(e.message)) return ' — wait until it finishes (or cancel it), then reprocess.';
  if (/model of this job was deleted/.test(e.message)) return ' — reprocessing validates against the job\'s model; upload the rejected rows to another model instead.';
  return '';
}

async function reprocess(job, button, after) {
  try {
    const j = await busy(button, () => api.reprocessJob(job.job_id));
    notify(`Reprocessing job ${shortId(job.job_id)}: new job ${shortId(j.job_id)} (${j.state}).`, 'ok',
      h('a', { href: '#/jobs/' + j.job_id }, 'Open it'));
  } catch (e) {
    notify(`Job ${shortId(job.job_id)} was not reprocessed: ${e.readable || e}${e.status ? reprocessHint(e) : ''}`, 'error');
  }
  after();
}

/** The "dry run" tag of a job that publishes no event. */
export function dryRunTag(j) {
  return j.dry_run ? h('span', { class: 'tag dry-run', title: 'dry run: rows validated and counted, no event published' }, 'dry run') : null;
}

/** A job's row; its actions cell is taken from `keep` (job id -> {key, td})
 * when the buttons would be the same, so a refresh never swaps a button
 * under the pointer or the keyboard. */
function row(j, after, keep) {
  const key = `${j.state}/${j.errors > 0}`;
  const old = keep.get(j.job_id);
  const actions = old && old.key === key ? old.td : h('td', { class: 'actions' }, jobActions(j, after));
  keep.set(j.job_id, { key, td: actions });
  return h('tr', { dataset: { job: j.job_id, state: j.state } },
    h('td', { 'data-label': 'Job' }, h('a', { href: '#/jobs/' + j.job_id, title: j.job_id }, h('code', null, shortId(j.job_id)))),
    h('td', { 'data-label': 'Model' }, h('a', { href: '#/models/' + j.model_id }, j.model_name || shortId(j.model_id))),
    h('td', { 'data-label': 'File', class: 'file' }, j.file_name, j.dry_run ? ' ' : null, dryRunTag(j)),
    h('td', { 'data-label': 'State' }, stateBadge(j.state)),
    h('td', { 'data-label': 'Total', class: 'num' }, fmtInt(j.total)),
    h('td', { 'data-label': 'Valid', class: 'num' }, fmtInt(j.success)),
    h('td', { 'data-label': 'Rejected', class: 'num' }, fmtInt(j.errors)),
    h('td', { 'data-label': 'Progress' }, progressBar(j)),
    h('td', { 'data-label': 'Waiting', class: 'num' }, fmtDuration(j.waiting_ms)),
    h('td', { 'data-label': 'Processing', class: 'num' }, fmtDuration(j.processing_ms)),
    h('td', { 'data-label': 'Created' }, fmtTime(j.created_at)),
    actions);
}

export async function page(view, ctx) {
  const state = ctx.query.get('state') || '';
  const modelId = ctx.query.get('model') || '';
  const limit = LIMITS.includes(+ctx.query.get('limit')) && ctx.query.has('limit') ? +ctx.query.get('limit') : 200;
  const go = (over) => {
    location.hash = setQuery('#/jobs', { state, model: modelId, limit: limit === 200 ? '' : String(limit), ...over });
  };
  const stateSel = h('select', { id: 'filter-state', onchange: () => go({ state: stateSel.value }) },
    h('option', { value: '' }, 'any state'), STATES.map((s) => h('option', { value: s, selected: s === state }, s)));
  const modelSel = h('select', { id: 'filter-model', onchange: () => go({ model: modelSel.value }) },
    h('option', { value: '' }, 'any model'));
  const limitSel = h('select', { id: 'filter-limit', onchange: () => go({ limit: limitSel.value === '200' ? '' : limitSel.value }) },
    LIMITS.map((n) => h('option', { value: String(n), selected: n === limit }, n ? `newest ${n}` : 'all')));
  const live = h('p', { id: 'jobs-live', class: 'muted small', role: 'status' });
  const err = h('div', { id: 'jobs-error' });
  const body = h('div', { id: 'jobs-body' }, h('p', { class: 'muted' }, 'Loading jobs…'));
  view.append(
    h('div', { class: 'page-head' }, h('h1', { tabindex: '-1' }, 'Jobs'),
      h('a', { class: 'button primary', href: '#/upload' }, 'Upload a file')),
    h('div', { class: 'filters row', role: 'group', 'aria-label': 'Filters' },
      h('label', { for: 'filter-state' }, 'State'), stateSel,
      h('label', { for: 'filter-model' }, 'Model'), modelSel,
      h('label', { for: 'filter-limit' }, 'Show'), limitSel),
    live, err, body);

  // model names for the filter (the list works without them)
  api.listModels(ctx.signal).then((models) => {
    for (const m of models) modelSel.append(h('option', { value: m.model_id, selected: m.model_id === modelId }, m.name));
    if (modelId && !models.some((m) => m.model_id === modelId)) modelSel.append(h('option', { value: modelId, selected: true }, shortId(modelId) + ' (deleted?)'));
  }, (e) => { if (e.name !== 'AbortError') modelSel.append(h('option', { disabled: true }, 'models unavailable')); });

  let last = '';
  const keep = new Map(); // job id -> its actions cell, reused across refreshes
  const poller = new Poller(async () => {
    const jobs = (await api.listJobs({ state, limit }, ctx.signal)).filter((j) => !modelId || j.model_id === modelId);
    const key = JSON.stringify(jobs);
    const changed = key !== last;
    last = key;
    if (changed) render(jobs);
    return changed || jobs.some((j) => !FINAL_STATES.has(j.state));
  }, {
    onError: (e, delay) => err.replaceChildren(e ? errorBox(e, `Cannot refresh the jobs (next try in ${Math.round(delay / 1000)} s)`) : ''),
    onSchedule: (delay) => { live.textContent = `Updated ${new Date().toLocaleTimeString()} · next update in ${Math.round(delay / 1000)} s`; },
  });
  const render = (jobs) => {
    if (!jobs.length) {
      body.replaceChildren(h('p', { class: 'empty' }, state || modelId ? 'No job matches these filters.' : `Tenant ${ctx.tenant} has no jobs yet. `,
        state || modelId ? null : h('a', { href: '#/upload' }, 'Upload a file')));
      return;
    }
    const table = h('table', { class: 'grid jobs', id: 'jobs-table' },
      h('caption', { class: 'sr-only' }, 'Jobs, newest first'),
      h('thead', null, h('tr', null, ['Job', 'Model', 'File', 'State', 'Total', 'Valid', 'Rejected', 'Progress', 'Waiting', 'Processing', 'Created', '']
        .map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', null, jobs.map((j) => row(j, () => poller.kick(), keep))));
    // a focused button moves to the new table with its cell: keep the keyboard there
    const focused = document.activeElement;
    body.replaceChildren(table);
    if (focused && focused !== document.activeElement && table.contains(focused)) focused.focus({ preventScroll: true });
  };
  poller.start();
  return () => poller.stop();
}
