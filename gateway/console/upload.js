// upload.js -- the Upload page: pick or drop a file, choose the model and
// the options POST /jobs takes (the format, from the file name or a forced
// NDJSON content type; the CSV separator; dry run; the error budget: max
// errors and max error rate, empty = the model's defaults, shown), then a
// real progress bar from XMLHttpRequest upload events (bytes, %, MB/s)
// until the gateway answers with the job, whose page opens.
import * as api from './api.js';
import { dropZone } from './models.js';
import { h, fmtBytes, errorBox, notify, shortId, budgetText } from './ui.js';

const SEP_RX = /^([\t !#-~]|\\t|tab)?$/; // docs/openapi.yaml Separator
const MAX_ERRORS_RX = /^[0-9]{1,18}$/; // POST /jobs max_errors
const MAX_RATE_RX = /^(0(\.[0-9]{1,15})?|1(\.0{1,15})?|\.[0-9]{1,15})$/; // POST /jobs max_error_rate


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
  const dry = h('input', { type: 'checkbox', id: 'upload-dry-run' });
  const maxErrors = h('input', { id: 'upload-max-errors', class: 'narrow', inputmode: 'numeric', maxlength: '18', 'aria-describedby': 'upload-budget-help' });
  const maxRate = h('input', { id: 'upload-max-rate', class: 'narrow', inputmode: 'decimal', maxlength: '17', 'aria-describedby': 'upload-budget-help' });
  const budgetHelp = h('p', { id: 'upload-budget-help', class: 'muted small' });
  const showDefaults = () => {
    const m = models.find((x) => x.model_id === model.value);
    maxErrors.placeholder = m && Number.isFinite(m.max_errors) ? String(m.max_errors) : 'none';
    maxRate.placeholder = m && Number.isFinite(m.max_error_rate) ? String(m.max_error_rate) : 'none';
    budgetHelp.textContent = 'The job stops as FAILED once more rows than max errors are rejected, or more than this share (0 to 1, e.g. 0.1 = 10%) ' +
      `of the processed rows (checked from min(1000, total) rows on). Empty = the model's default: ${budgetText(m)}.`;
  };
  model.addEventListener('change', showDefaults);
  showDefaults();
  const options = h('fieldset', { class: 'options', id: 'upload-options' }, h('legend', null, 'Options'),
    h('div', { class: 'row' }, dry, h('label', { for: 'upload-dry-run' }, 'Dry run'),
      h('span', { class: 'muted small' }, 'validate and count every row, publish no event')),
    h('div', { class: 'row' }, h('label', { for: 'upload-max-errors' }, 'Max errors'), maxErrors,
      h('label', { for: 'upload-max-rate' }, 'Max error rate'), maxRate),
    budgetHelp);
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
    options,
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
    const bad = (text, field) => {
      result.replaceChildren(h('div', { class: 'error', role: 'alert' }, text));
      field.focus();
    };
    const me = maxErrors.value.trim(), mr = maxRate.value.trim();
    if (me && !MAX_ERRORS_RX.test(me)) return bad('max errors: expected a whole number of rows (0 or more), or empty for the model\'s default', maxErrors);
    if (mr && !MAX_RATE_RX.test(mr)) return bad('max error rate: expected a share from 0 to 1 (e.g. 0.1 for 10%), or empty for the model\'s default', maxRate);
    // The browser reads the file as it was when chosen; one changed on disk
    // since then cannot be read, and the upload would fail as a network error.
    go.disabled = true;
    file.slice(0, 1).arrayBuffer().then(() => start(isCsv, me, mr), () => {
      go.disabled = !file;
      result.replaceChildren(h('div', { class: 'error', role: 'alert' },
        `file: ${file.name} changed on disk after it was chosen (or can no longer be read): choose it again`));
    });
  });
  const start = (isCsv, me, mr) => {
    const body = format.value === 'ndjson' ? new File([file], file.name, { type: 'application/x-ndjson' }) : file;
    const t0 = performance.now();
    progress.hidden = false;
    setBar(0, file.size, t0, false);
    inflight = api.uploadFile({ modelId: model.value, file: body, separator: isCsv ? sep.value : '',
      dryRun: dry.checked, maxErrors: me, maxErrorRate: mr },
      (p) => setBar(p.loaded, p.total, t0, p.done));
    go.disabled = true;
    stop.hidden = false;
    inflight.promise.then((job) => {
      notify(`Job ${shortId(job.job_id)} created from ${job.file_name}${job.dry_run ? ' (dry run: no event will be published)' : ''}.`);
      location.hash = '#/jobs/' + job.job_id;
    }, (e) => {
      progress.hidden = e.code === 'ABORTED';
      result.replaceChildren(e.code === 'ABORTED' ? h('p', { role: 'status' }, 'Upload cancelled: no job was created.') : errorBox(e, 'The upload failed'));
    }).finally(() => {
      inflight = null;
      go.disabled = !file;
      stop.hidden = true;
    });
  };
  stop.addEventListener('click', () => inflight && inflight.abort());
  view.append(form);
  return () => { if (inflight) inflight.abort(); }; // leaving the page ends the upload
}
