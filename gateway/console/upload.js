// upload.js -- the Upload page: pick or drop a file, choose the model and
// the options POST /jobs takes today (the format, from the file name or a
// forced NDJSON content type, and the CSV separator), then a real progress
// bar from XMLHttpRequest upload events (bytes, %, MB/s) until the gateway
// answers with the job, whose page opens. (Dry run and an error budget are
// not in the API yet, so they are not offered.)
import * as api from './api.js';
import { dropZone } from './models.js';
import { h, fmtBytes, errorBox, notify, shortId } from './ui.js';

const SEP_RX = /^([\t !#-~]|\\t|tab)?$/; // docs/openapi.yaml Separator

/** The format the gateway will read: NDJSON for *.ndjson / *.jsonl (or a forced NDJSON type), else CSV. */
function formatOf(file, choice) {
  if (/\.(ndjson|jsonl)$/i.test(file.name)) return 'NDJSON';
  return choice === 'ndjson' ? 'NDJSON' : 'CSV';
}

export async function page(view, ctx) {
  view.append(h('div', { class: 'page-head' }, h('h1', { tabindex: '-1' }, 'Upload a file')));
  let models;
  try {
    models = await api.listModels(ctx.signal);
  } catch (e) {
    if (e.name === 'AbortError') return;
    view.append(errorBox(e, 'Cannot list the models'));
    return;
  }
  if (!models.length) {
    view.append(h('p', { class: 'empty' }, `Tenant ${ctx.tenant} has no model to upload to. `, h('a', { href: '#/models/new' }, 'Create a model'), ' first.'));
    return;
  }
  const want = ctx.query.get('model');
  const model = h('select', { id: 'upload-model', required: true },
    models.map((m) => h('option', { value: m.model_id, selected: m.model_id === want }, `${m.name} (${shortId(m.model_id)})`)));
  const input = h('input', { type: 'file', id: 'upload-file', class: 'file-input' });
  const fileInfo = h('p', { id: 'upload-file-info', class: 'muted' }, 'No file chosen.');
  const format = h('select', { id: 'upload-format' },
    h('option', { value: 'auto' }, 'From the file name (CSV; NDJSON for .ndjson / .jsonl)'),
    h('option', { value: 'ndjson' }, 'NDJSON (one JSON object a line)'));
  const sep = h('input', { id: 'upload-separator', class: 'narrow', maxlength: '3', placeholder: ',', 'aria-describedby': 'upload-sep-help' });
  const sepRow = h('div', { class: 'row' }, h('label', { for: 'upload-separator' }, 'CSV separator'), sep,
    h('span', { id: 'upload-sep-help', class: 'muted small' }, 'one printable character other than ", or \\t / tab; empty = ,'));
  const go = h('button', { type: 'submit', class: 'primary', id: 'upload-start', disabled: true }, 'Upload');
  const stop = h('button', { type: 'button', id: 'upload-cancel', hidden: true }, 'Cancel upload');
  const bar = h('div', { class: 'ubar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0', 'aria-labelledby': 'upload-progress-text' }, h('span'));
  const barText = h('p', { id: 'upload-progress-text', class: 'status' });
  const progress = h('div', { id: 'upload-progress', hidden: true }, bar, barText);
  const result = h('div', { id: 'upload-result' });
  let file = null;
  let inflight = null;

  const describe = () => {
    if (!file) return;
    const f = formatOf(file, format.value);
    fileInfo.replaceChildren(h('strong', null, file.name), ` — ${fmtBytes(file.size)}, read as ${f}`);
    sepRow.hidden = f !== 'CSV';
    go.disabled = !!inflight;
  };
  const pick = (f) => { file = f; result.replaceChildren(); describe(); };
  input.addEventListener('change', () => pick(input.files[0] || null));
  format.addEventListener('change', describe);

  const setBar = (loaded, total, t0, done) => {
    const pct = total ? Math.min(100, (100 * loaded) / total) : 0;
    bar.firstChild.style.width = pct.toFixed(1) + '%';
    bar.setAttribute('aria-valuenow', pct.toFixed(0));
    const secs = Math.max((performance.now() - t0) / 1000, 0.001);
    const rate = loaded / secs / 1e6;
    barText.textContent = done
      ? `Sent ${fmtBytes(total)} in ${secs.toFixed(1)} s (${rate.toFixed(1)} MB/s). The gateway is publishing the rows…`
      : `${fmtBytes(loaded)} of ${fmtBytes(total)} · ${pct.toFixed(0)}% · ${rate.toFixed(1)} MB/s`;
    bar.classList.toggle('waiting', done);
  };

  const form = h('form', { id: 'upload-form', class: 'stack', novalidate: true },
    h('label', { for: 'upload-model' }, 'Model'), model,
    dropZone(input, 'Drop the data file here, or choose a file (CSV with a header row, or NDJSON)', pick),
    fileInfo,
    h('label', { for: 'upload-format' }, 'Format'), format,
    sepRow,
    h('div', { class: 'row' }, go, stop),
    progress, result);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    result.replaceChildren();
    if (!file) {
      result.replaceChildren(h('div', { class: 'error', role: 'alert' }, 'file: choose a file first'));
      return;
    }
    const isCsv = formatOf(file, format.value) === 'CSV';
    if (isCsv && !SEP_RX.test(sep.value)) {
      result.replaceChildren(h('div', { class: 'error', role: 'alert' }, 'separator: expected one printable ASCII character other than \'"\' (or a tab: \\t, tab); empty means \',\''));
      sep.focus();
      return;
    }
    const body = format.value === 'ndjson' ? new File([file], file.name, { type: 'application/x-ndjson' }) : file;
    const t0 = performance.now();
    progress.hidden = false;
    setBar(0, file.size, t0, false);
    inflight = api.uploadFile({ modelId: model.value, file: body, separator: isCsv ? sep.value : '' },
      (p) => setBar(p.loaded, p.total, t0, p.done));
    go.disabled = true;
    stop.hidden = false;
    inflight.promise.then((job) => {
      notify(`Job ${shortId(job.job_id)} created from ${job.file_name}.`);
      location.hash = '#/jobs/' + job.job_id;
    }, (e) => {
      progress.hidden = e.code === 'ABORTED';
      result.replaceChildren(e.code === 'ABORTED' ? h('p', { role: 'status' }, 'Upload cancelled: no job was created.') : errorBox(e, 'The upload failed'));
    }).finally(() => {
      inflight = null;
      go.disabled = !file;
      stop.hidden = true;
    });
  });
  stop.addEventListener('click', () => inflight && inflight.abort());
  view.append(form);
  return () => { if (inflight) inflight.abort(); }; // leaving the page ends the upload
}
