// models.js -- the Models pages: the list, one model (its columns as a
// table), the create/edit form with the schema editor (checked as you type;
// the server's 400 message shown at the property it names), "suggest from
// a sample file" (POST /schema), delete with confirmation, and the model's
// default error budget (max_errors, max_error_rate: PUT /models/{id}).
import * as api from './api.js';
import { check, columns, propertyOf } from './schema.js';
import { h, fmtTime, errorBox, notify, confirmDialog, busy, shortId, budgetText } from './ui.js';

const SAMPLE_BYTES = 512 * 1024; // POST /schema reads at most max_json_body (1 MiB) and 2,000 rows

export async function list(view, ctx) {
  view.append(h('div', { class: 'page-head' },
    h('h1', { tabindex: '-1' }, 'Models'),
    h('a', { class: 'button primary', href: '#/models/new', id: 'new-model' }, 'New model')));
  const box = h('div', { 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading models…'));
  view.append(box);
  let models;
  try {
    models = await api.listModels(ctx.signal);
  } catch (e) {
    if (e.name === 'AbortError') return;
    box.replaceChildren(errorBox(e, 'Cannot list the models'));
    return;
  }
  box.removeAttribute('aria-busy');
  if (!models.length) {
    box.replaceChildren(h('p', { class: 'empty' }, `Tenant ${ctx.tenant} has no models yet. `,
      h('a', { href: '#/models/new' }, 'Create one'), ', for instance from a sample CSV file.'));
    return;
  }
  const rows = models.map((m) => h('tr', { dataset: { model: m.model_id } },
    h('td', { 'data-label': 'Name' }, h('a', { href: '#/models/' + m.model_id }, m.name)),
    h('td', { 'data-label': 'Columns' }, String(columns(m.schema).length)),
    h('td', { 'data-label': 'Version' }, String(m.version)),
    h('td', { 'data-label': 'Topic' }, h('code', null, m.topic)),
    h('td', { 'data-label': 'Updated' }, fmtTime(m.updated_at)),
    h('td', { class: 'actions' },
      h('a', { class: 'button small', href: `#/upload?model=${m.model_id}` }, 'Upload'),
      h('a', { class: 'button small', href: `#/models/${m.model_id}/edit` }, 'Edit'),
      h('button', { type: 'button', class: 'small danger', onclick: (ev) => remove(m, ev.currentTarget, ctx) }, 'Delete'))));
  box.replaceChildren(h('table', { class: 'grid', id: 'models-table' },
    h('caption', { class: 'sr-only' }, `Models of tenant ${ctx.tenant}`),
    h('thead', null, h('tr', null, ['Name', 'Columns', 'Version', 'Topic', 'Updated', ''].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', null, rows)));
}

async function remove(m, button, ctx) {
  const ok = await confirmDialog(`Delete model "${m.name}" (${shortId(m.model_id)})? Its jobs and events stay, but no new file can be uploaded to it.`, 'Delete model');
  if (!ok) return;
  try {
    const r = await busy(button, () => api.deleteModel(m.model_id));
    notify(`Model "${m.name}" ${r && r.status ? r.status : 'deleted'}.`);
    if (location.hash === '#/models') ctx.rerender();
    else location.hash = '#/models';
  } catch (e) {
    notify(e.readable || String(e), 'error');
  }
}

export function columnsTable(schema, id = 'columns-table') {
  const cols = columns(schema);
  return h('table', { class: 'grid', id },
    h('thead', null, h('tr', null, ['Column', 'Type', 'Required', 'Constraints', 'Role'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', null, cols.map((c) => h('tr', { dataset: { column: c.name } },
      h('td', { 'data-label': 'Column' }, h('code', null, c.name), c.description ? h('div', { class: 'muted small' }, c.description) : null),
      h('td', { 'data-label': 'Type' }, c.type || '?'),
      h('td', { 'data-label': 'Required' }, c.required ? 'yes' : 'no'),
      h('td', { 'data-label': 'Constraints' }, c.constraints || '—'),
      h('td', { 'data-label': 'Role' }, c.role || '—')))));
}

export async function show(view, ctx, id) {
  const box = h('div', { 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading the model…'));
  view.append(box);
  let m;
  try {
    m = await api.getModel(id, ctx.signal);
  } catch (e) {
    if (e.name === 'AbortError') return;
    box.replaceChildren(h('h1', { tabindex: '-1' }, 'Model'), errorBox(e, `Cannot load model ${id}`),
      h('p', null, h('a', { href: '#/models' }, 'Back to the models')));
    return;
  }
  ctx.title(m.name);
  const del = h('button', { type: 'button', class: 'danger', id: 'delete-model', onclick: () => remove(m, del, ctx) }, 'Delete');
  box.removeAttribute('aria-busy');
  box.replaceChildren(
    h('div', { class: 'page-head' }, h('h1', { tabindex: '-1' }, m.name),
      h('div', { class: 'actions' },
        h('a', { class: 'button primary', href: `#/upload?model=${m.model_id}` }, 'Upload a file'),
        h('a', { class: 'button', href: `#/jobs?model=${m.model_id}` }, 'Jobs'),
        h('a', { class: 'button', href: `#/models/${m.model_id}/edit`, id: 'edit-model' }, 'Edit'), del)),
    h('dl', { class: 'facts' },
      fact('Id', h('code', null, m.model_id)), fact('Version', String(m.version)), fact('Topic', h('code', null, m.topic)),
      fact('Created', fmtTime(m.created_at)), fact('Updated', fmtTime(m.updated_at))),
    budgetForm(m),
    h('h2', null, 'Columns'), columnsTable(m.schema),
    h('details', null, h('summary', null, 'Schema (JSON)'), h('pre', { class: 'code' }, JSON.stringify(m.schema, null, 2))));
}

/** The model's default error budget, shown and edited (PUT /models/{id} with
 * max_errors and max_error_rate only; an empty field sends null: no limit). */
function budgetForm(m) {
  const now = h('p', { id: 'budget-current' });
  const show = () => now.replaceChildren('Default error budget of new jobs: ', h('strong', null, budgetText(m)), '.');
  const maxErrors = h('input', { id: 'budget-max-errors', class: 'narrow', inputmode: 'numeric', maxlength: '18', placeholder: 'none',
    value: Number.isFinite(m.max_errors) ? String(m.max_errors) : '' });
  const maxRate = h('input', { id: 'budget-max-rate', class: 'narrow', inputmode: 'decimal', maxlength: '17', placeholder: 'none',
    value: Number.isFinite(m.max_error_rate) ? String(m.max_error_rate) : '' });
  const save = h('button', { type: 'submit', id: 'budget-save' }, 'Save budget');
  const status = h('div', { id: 'budget-status', role: 'status' });
  const form = h('form', { id: 'budget-form', class: 'stack', novalidate: true },
    h('fieldset', null, h('legend', null, 'Error budget'), now,
      h('div', { class: 'row' }, h('label', { for: 'budget-max-errors' }, 'Max errors'), maxErrors,
        h('label', { for: 'budget-max-rate' }, 'Max error rate'), maxRate, save),
      h('p', { class: 'muted small' }, 'A job stops as FAILED once more rows than max errors are rejected, or more than the rate ' +
        '(0 to 1, e.g. 0.1 = 10%) of its processed rows. Empty = no limit. An upload can set its own.'),
      status));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const me = maxErrors.value.trim(), mr = maxRate.value.trim();
    const bad = (text, field) => { status.replaceChildren(h('div', { class: 'error', role: 'alert' }, text)); field.focus(); };
    if (me && !/^[0-9]{1,15}$/.test(me)) return bad('max errors: expected a whole number of rows (0 or more), or empty for none', maxErrors);
    if (mr && !(/^[0-9]*\.?[0-9]+$/.test(mr) && +mr <= 1)) return bad('max error rate: expected a share from 0 to 1 (e.g. 0.1 for 10%), or empty for none', maxRate);
    try {
      const r = await busy(save, () => api.updateModelBudget(m.model_id, me ? +me : null, mr ? +mr : null));
      m.max_errors = r.max_errors;
      m.max_error_rate = r.max_error_rate;
      show();
      status.replaceChildren(h('span', { class: 'ok' }, 'Saved.'));
    } catch (e) {
      status.replaceChildren(errorBox(e, 'The budget was not saved'));
    }
  });
  show();
  return form;
}

export function fact(k, v) {
  return h('div', null, h('dt', null, k), h('dd', null, v));
}

/** Create (model undefined) or edit form. */
export async function edit(view, ctx, id) {
  let model = null;
  if (id) {
    try {
      model = await api.getModel(id, ctx.signal);
    } catch (e) {
      if (e.name === 'AbortError') return;
      view.append(h('h1', { tabindex: '-1' }, 'Edit model'), errorBox(e, `Cannot load model ${id}`));
      return;
    }
    ctx.title('Edit ' + model.name);
  }
  const name = h('input', { id: 'model-name', name: 'name', required: true, maxlength: '200', value: model ? model.name : '', autocomplete: 'off' });
  const text = h('textarea', { id: 'schema-text', name: 'schema', rows: '16', spellcheck: 'false', 'aria-describedby': 'schema-status',
    value: model ? JSON.stringify(model.schema, null, 2) : '' });
  text.value = model ? JSON.stringify(model.schema, null, 2) : '';
  const status = h('p', { id: 'schema-status', class: 'status', role: 'status' });
  const preview = h('div', { id: 'columns-preview' });
  const saveError = h('div', { id: 'save-error' });
  const save = h('button', { type: 'submit', class: 'primary', id: 'model-save' }, model ? 'Save changes' : 'Create model');
  let serverError = null; // {message, property}: shown until the text changes

  const refresh = () => {
    const r = check(text.value);
    status.className = 'status ' + (r.schema ? 'ok' : 'bad');
    if (r.schema) status.textContent = `✓ valid JSON schema: ${columns(r.schema).length} column(s)`;
    else status.textContent = '✗ ' + r.error;
    text.setAttribute('aria-invalid', r.schema ? 'false' : 'true');
    let shown = r.schema;
    if (!shown) {
      try { shown = JSON.parse(text.value); } catch { shown = null; }
    }
    const table = shown ? columnsTable(shown, 'columns-preview-table') : h('p', { class: 'muted' }, 'The columns appear here once the schema is valid JSON.');
    preview.replaceChildren(table);
    const bad = serverError || (!r.schema && r.path ? { message: r.error, property: r.path } : null);
    if (bad && shown) markProperty(table, bad.property, bad.message, !!serverError);
    return r;
  };
  text.addEventListener('input', () => { serverError = null; saveError.replaceChildren(); refresh(); });

  const form = h('form', { id: 'model-form', class: 'stack', novalidate: true },
    h('label', { for: 'model-name' }, 'Name'), name,
    suggestBox(text, name, () => { serverError = null; refresh(); }),
    h('label', { for: 'schema-text' }, 'Schema ', h('span', { class: 'muted' }, '(JSON Schema: see SPEC 5 — types string, integer, number, boolean, array; enum, format unix-time, minimum/maximum…)')),
    text, status,
    h('h2', null, 'Columns'), preview,
    saveError,
    h('div', { class: 'row' }, save, h('a', { class: 'button', href: model ? '#/models/' + model.model_id : '#/models' }, 'Cancel')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    saveError.replaceChildren();
    const r = refresh();
    let schema = r.schema;
    if (!schema) {
      try { schema = JSON.parse(text.value); } catch {
        saveError.replaceChildren(h('div', { class: 'error', role: 'alert' }, 'Fix the JSON first: ' + r.error));
        text.focus();
        return;
      }
    }
    if (!name.value.trim()) {
      saveError.replaceChildren(h('div', { class: 'error', role: 'alert' }, 'name: required'));
      name.focus();
      return;
    }
    try {
      const m = await busy(save, () => (model ? api.updateModel(model.model_id, name.value.trim(), schema) : api.createModel(name.value.trim(), schema)));
      notify(model ? `Model "${m.name}" saved (version ${m.version}).` : `Model "${m.name}" created.`);
      location.hash = '#/models/' + m.model_id;
    } catch (e) {
      const names = schema && schema.properties && typeof schema.properties === 'object' ? Object.keys(schema.properties) : [];
      const prop = propertyOf(e.message, names);
      serverError = e.status === 400 && prop ? { message: e.readable, property: prop } : null;
      saveError.replaceChildren(errorBox(e, 'The server refused the model'));
      refresh();
      const at = preview.querySelector('tr.bad');
      (at || saveError).scrollIntoView({ block: 'center' });
    }
  });
  view.append(h('div', { class: 'page-head' }, h('h1', { tabindex: '-1' }, model ? `Edit model ${model.name}` : 'New model')), form);
  refresh();
}

/** Highlights a property's row in a columns table and puts the message under it. */
function markProperty(table, property, message, fromServer) {
  const row = [...table.querySelectorAll('tbody tr')].find((tr) => tr.dataset.column === property);
  const msg = h('td', { colspan: '5', role: fromServer ? 'alert' : null }, (fromServer ? 'Server: ' : '') + message);
  const note = h('tr', { class: 'row-error', id: fromServer ? 'server-error-at-property' : null }, msg);
  if (row) {
    row.classList.add('bad');
    row.after(note);
  } else {
    table.tBodies[0].append(note);
  }
}

/** The "suggest from a sample file" box: a drop zone and a file picker. */
function suggestBox(text, name, changed) {
  const input = h('input', { type: 'file', id: 'sample-file', class: 'file-input', accept: '.csv,.txt,.tsv,text/csv' });
  const sep = h('input', { id: 'sample-separator', class: 'narrow', maxlength: '3', placeholder: ',', 'aria-describedby': 'sample-sep-help' });
  const msg = h('div', { id: 'suggest-status', role: 'status' });
  const run = async (file) => {
    if (!file) return;
    msg.replaceChildren(h('span', { class: 'muted' }, `Reading ${file.name}…`));
    try {
      let sample = await file.slice(0, SAMPLE_BYTES).text();
      if (file.size > SAMPLE_BYTES) sample = sample.slice(0, sample.lastIndexOf('\n') + 1) || sample;
      const schema = await api.suggestSchema(sample, sep.value);
      text.value = JSON.stringify(schema, null, 2);
      if (!name.value.trim()) name.value = file.name.replace(/\.[^.]*$/, '');
      msg.replaceChildren(h('span', { class: 'ok' }, `Suggested from ${file.name}: ${Object.keys(schema.properties || {}).length} column(s). Review it, then save.`));
      changed();
    } catch (e) {
      msg.replaceChildren(errorBox(e, `No suggestion from ${file.name}`));
    }
  };
  input.addEventListener('change', () => run(input.files[0]));
  const zone = dropZone(input, 'Drop a CSV sample here, or choose a file', (f) => run(f));
  return h('fieldset', { class: 'suggest' },
    h('legend', null, 'Suggest from a sample file'),
    zone,
    h('div', { class: 'row' }, h('label', { for: 'sample-separator' }, 'Separator'), sep,
      h('span', { id: 'sample-sep-help', class: 'muted small' }, 'one character, or \\t for tab; empty = ,')),
    msg);
}

/** A label that is the file input's face and takes dropped files. */
export function dropZone(input, text, onFile) {
  const zone = h('label', { class: 'drop', for: input.id }, input, h('span', null, text));
  for (const t of ['dragenter', 'dragover']) {
    zone.addEventListener(t, (ev) => { ev.preventDefault(); zone.classList.add('over'); });
  }
  for (const t of ['dragleave', 'drop']) zone.addEventListener(t, () => zone.classList.remove('over'));
  zone.addEventListener('drop', (ev) => {
    ev.preventDefault();
    const f = ev.dataTransfer && ev.dataTransfer.files[0];
    if (f) onFile(f);
  });
  return zone;
}
