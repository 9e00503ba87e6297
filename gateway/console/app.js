// app.js -- the console's entry point: the tenant selector and settings in
// the header, and a hash router (#/models, #/models/new, #/models/<id>,
// #/models/<id>/edit, #/upload, #/jobs, #/jobs/<id>). Each page renders into
// <main> and may return a cleanup (stop polling, abort an upload) that runs
// when the user leaves it; an AbortSignal cancels its pending requests.
import * as settings from './settings.js';
import * as models from './models.js';
import * as upload from './upload.js';
import * as jobs from './jobs.js';
import * as job from './job.js';
import { h, errorBox, parseHash } from './ui.js';

const UUID_RX = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const view = document.getElementById('view');
let current = null; // {cleanup, abort}

function route(parts) {
  const [a, b, c] = parts;
  if (a === 'models' && !b) return ['models', (v, ctx) => models.list(v, ctx)];
  if (a === 'models' && b === 'new' && !c) return ['models', (v, ctx) => models.edit(v, ctx)];
  if (a === 'models' && UUID_RX.test(b || '') && !c) return ['models', (v, ctx) => models.show(v, ctx, b.toLowerCase())];
  if (a === 'models' && UUID_RX.test(b || '') && c === 'edit') return ['models', (v, ctx) => models.edit(v, ctx, b.toLowerCase())];
  if (a === 'upload' && !b) return ['upload', (v, ctx) => upload.page(v, ctx)];
  if (a === 'jobs' && !b) return ['jobs', (v, ctx) => jobs.page(v, ctx)];
  if (a === 'jobs' && UUID_RX.test(b || '') && !c) return ['jobs', (v, ctx) => job.page(v, ctx, b.toLowerCase())];
  return null;
}

const TITLES = { models: 'Models', upload: 'Upload', jobs: 'Jobs' };

async function render() {
  if (current) {
    current.abort.abort();
    if (typeof current.cleanup === 'function') current.cleanup();
  }
  const { parts, query } = parseHash(location.hash);
  if (!parts.length) {
    location.replace('#/jobs');
    return;
  }
  const r = route(parts);
  const abort = new AbortController();
  current = { abort, cleanup: null };
  const mine = current;
  view.replaceChildren();
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (r && a.dataset.nav === r[0]) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const ctx = {
    tenant: settings.tenant(),
    query,
    signal: abort.signal,
    title: (t) => { document.title = `${t} · ${settings.tenant()} · Batch-on-Kafka`; },
    rerender: render,
  };
  if (!r) {
    ctx.title('Not found');
    view.append(h('h1', { tabindex: '-1' }, 'Page not found'),
      h('p', null, 'There is no console page at ', h('code', null, location.hash), '. ', h('a', { href: '#/jobs' }, 'Go to the jobs.')));
    focusHeading();
    return;
  }
  ctx.title(TITLES[r[0]]);
  try {
    const cleanup = await r[1](view, ctx);
    if (current === mine) mine.cleanup = cleanup;
    else if (typeof cleanup === 'function') cleanup();
  } catch (e) {
    if (e && e.name === 'AbortError') return;
    if (current === mine) view.append(errorBox(e, 'This page failed'));
  }
  if (current === mine) focusHeading();
}

let lastPage = null;
/** After navigating, the keyboard starts at the page's heading (not on the
 * first load, where Tab should meet the skip link and the navigation, nor on
 * a refresh of the same page). */
function focusHeading() {
  const page = location.hash.split('?')[0];
  const first = lastPage === null;
  if (page === lastPage) return;
  lastPage = page;
  if (first) return;
  const h1 = view.querySelector('h1');
  if (h1) h1.focus({ preventScroll: true });
}

function initHeader() {
  const form = document.getElementById('tenant-form');
  const input = document.getElementById('tenant');
  const list = document.getElementById('tenant-list');
  const fill = () => {
    input.value = settings.tenant();
    list.replaceChildren(...settings.recentTenants().map((t) => h('option', { value: t })));
  };
  fill();
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = input.value.trim();
    try {
      settings.setTenant(t);
    } catch (e) {
      input.setCustomValidity(e.message);
      input.reportValidity();
      return;
    }
    input.setCustomValidity('');
    fill();
    // another tenant's model or job is "not found": go to the list of the same kind
    const { parts } = parseHash(location.hash);
    const top = parts[0] === 'models' || parts[0] === 'upload' ? '#/' + parts[0] : '#/jobs';
    if (location.hash === top) render();
    else location.hash = top;
  });
  input.addEventListener('input', () => input.setCustomValidity(''));

  const sform = document.getElementById('settings-form');
  const key = document.getElementById('api-key');
  const header = document.getElementById('tenant-header');
  const status = document.getElementById('settings-status');
  const panel = document.getElementById('settings');
  panel.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && panel.open) {
      panel.open = false;
      panel.querySelector('summary').focus();
    }
  });
  key.value = settings.apiKey();
  header.value = settings.tenantHeader();
  sform.addEventListener('submit', (ev) => {
    ev.preventDefault();
    try {
      settings.setTenantHeader(header.value.trim());
      settings.setApiKey(key.value);
      status.textContent = 'Saved.';
      render();
    } catch (e) {
      status.textContent = e.message;
    }
  });
}

window.addEventListener('hashchange', render);
// requests cancelled by leaving a page are not errors (nor console noise)
window.addEventListener('unhandledrejection', (ev) => {
  if (ev.reason && ev.reason.name === 'AbortError') ev.preventDefault();
});
initHeader();
render();
