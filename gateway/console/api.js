// api.js -- the gateway's REST API (docs/openapi.yaml), called the way
// batchcli calls it: every request carries the tenant header (X-Tenant-ID
// unless changed in Settings, like the CLI's TENANT_HEADER) and, when a key
// is set, "Authorization: Bearer <key>" (the CLI's BATCH_API_KEY). Any
// failure becomes an ApiError whose message a person can read: the server's
// {"error": ...} text, or what went wrong when there is none.
import * as settings from './settings.js';

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status; // 0: no answer at all
    this.code = code || '';
    this.body = body;
  }

  /** One line: what the server said and what it means for the user. */
  get readable() {
    const head = this.status ? `${this.status}${this.code ? ' ' + this.code : ''}: ` : '';
    return head + this.message + hint(this.status);
  }
}

function hint(status) {
  switch (status) {
    case 401: return ' — set a valid API key in Settings.';
    case 403: return ' — the API key belongs to another tenant: pick that tenant or change the key in Settings.';
    case 413: return ' — the gateway refuses bodies this large.';
    case 502: case 503: return ' — try again shortly.';
    case 504: return ' — the service did not answer in time; try again.';
    default: return '';
  }
}

/** The ApiError for an answer that is not 2xx. */
export function errorFrom(status, data, statusText) {
  if (data && typeof data === 'object' && typeof data.error === 'string') {
    return new ApiError(status, data.code, data.error, data);
  }
  if (typeof data === 'string' && data.trim()) {
    return new ApiError(status, '', data.trim().slice(0, 300), data);
  }
  return new ApiError(status, '', statusText || 'the gateway gave no explanation', data);
}

export function authHeaders() {
  const h = { [settings.tenantHeader()]: settings.tenant() };
  const key = settings.apiKey();
  if (key) h.Authorization = 'Bearer ' + key;
  return h;
}

function parse(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Calls the API. `opts.json` is sent as JSON; `opts.body` as is with
 * `opts.type`. Resolves with the parsed answer; rejects with ApiError (or
 * an AbortError when `opts.signal` aborted it).
 */
export async function call(method, path, opts = {}) {
  const headers = authHeaders();
  let body = opts.body;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['Content-Type'] = 'application/json';
  } else if (opts.type) {
    headers['Content-Type'] = opts.type;
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body, signal: opts.signal, cache: 'no-store' });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'NETWORK', `the gateway did not answer (${e.message}); is it running?`);
  }
  let text;
  try {
    text = await res.text();
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(res.status, 'NETWORK', `the answer was cut off (${e.message})`);
  }
  const data = parse(text);
  if (!res.ok) throw errorFrom(res.status, data, res.statusText);
  return data;
}

export const listModels = (signal) => call('GET', '/models', { signal });
export const getModel = (id, signal) => call('GET', '/models/' + encodeURIComponent(id), { signal });
export const createModel = (name, schema) => call('POST', '/models', { json: { name, schema } });
export const updateModel = (id, name, schema) => call('PUT', '/models/' + encodeURIComponent(id), { json: { name, schema } });
/** Sets a model's default error budget (PUT /models/{id}): null removes a limit. */
export const updateModelBudget = (id, maxErrors, maxErrorRate) =>
  call('PUT', '/models/' + encodeURIComponent(id), { json: { max_errors: maxErrors, max_error_rate: maxErrorRate } });
export const deleteModel = (id) => call('DELETE', '/models/' + encodeURIComponent(id));
export const suggestSchema = (sample, separator) =>
  call('POST', '/schema' + (separator && separator !== ',' ? '?separator=' + encodeURIComponent(separator) : ''),
    { body: sample, type: 'text/csv' });

export function listJobs({ state = '', limit = 0 } = {}, signal) {
  const q = new URLSearchParams();
  if (state) q.set('state', state);
  if (limit) q.set('limit', String(limit));
  const qs = q.toString();
  return call('GET', '/jobs' + (qs ? '?' + qs : ''), { signal });
}
export const getJob = (id, signal) => call('GET', '/jobs/' + encodeURIComponent(id), { signal });

/**
 * Follows a job's server-sent events (GET /jobs/{id}/events, WatchJob): calls
 * onJob(job) for each `data:` line, as GET /jobs/{id} would answer, until the
 * job is final and the stream ends. fetch() rather than EventSource, which
 * cannot send the tenant and key headers. Rejects on an HTTP error or when
 * the stream breaks off (the caller polls then).
 */
export async function watchJob(id, onJob, signal) {
  const res = await fetch(`/jobs/${encodeURIComponent(id)}/events`, { headers: authHeaders(), signal, cache: 'no-store' });
  if (!res.ok || !res.body) {
    let data = null;
    try { data = await res.json(); } catch (_) { /* no JSON body */ }
    throw errorFrom(res.status, data, res.statusText);
  }
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
      if (data) onJob(JSON.parse(data));
    }
  }
}
export const cancelJob = (id) => call('DELETE', '/jobs/' + encodeURIComponent(id));
export const reprocessJob = (id) => call('POST', '/jobs/' + encodeURIComponent(id) + '/reprocess');
export const listRejected = (id, afterRow, limit, signal) =>
  call('GET', `/jobs/${encodeURIComponent(id)}/rejected?after_row=${afterRow}&limit=${limit}`, { signal });
/** The error summary (GET /jobs/{id}/errors): [{code, column, type, count, first_row, example, message}]. */
export const jobErrors = (id, signal) => call('GET', `/jobs/${encodeURIComponent(id)}/errors`, { signal });

/**
 * Reads the rejected rows as a file (GET /jobs/{id}/rejected/download,
 * with the tenant and key headers a plain link could not send). Resolves
 * with {blob, name}: the file name from Content-Disposition, else
 * rejected-<short id>.csv; rejects with ApiError.
 */
export async function downloadRejected(id, annotate) {
  const path = `/jobs/${encodeURIComponent(id)}/rejected/download${annotate ? '?annotate=true' : ''}`;
  let res, blob;
  try {
    res = await fetch(path, { headers: authHeaders(), cache: 'no-store' });
    if (!res.ok) {
      const text = await res.text();
      throw errorFrom(res.status, parse(text), res.statusText);
    }
    blob = await res.blob(); // a transfer cut short (an incomplete chunked body) rejects here
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw new ApiError(res ? res.status : 0, 'NETWORK', `the download failed (${e.message})`);
  }
  const m = /filename="?([^";]+)"?/.exec(res.headers.get('Content-Disposition') || '');
  return { blob, name: m ? m[1] : `rejected-${id.slice(0, 8)}.csv` };
}

/**
 * Uploads a file (POST /jobs, multipart: model_id, separator, dry_run,
 * max_errors, max_error_rate, file; the optional ones only when set) with
 * XMLHttpRequest, whose upload progress events fetch() does not give.
 * onProgress({loaded, total, done}) is called as bytes leave the browser
 * (done: every byte sent, the gateway is publishing the rows). Returns
 * {promise, abort}; the promise resolves with the job (202) or rejects with
 * ApiError (status 0 and code ABORTED after abort()).
 */
export function uploadFile({ modelId, file, separator, dryRun, maxErrors, maxErrorRate }, onProgress) {
  const form = new FormData();
  form.append('model_id', modelId);
  if (separator !== undefined && separator !== '') form.append('separator', separator);
  if (dryRun) form.append('dry_run', 'true');
  if (maxErrors !== undefined && maxErrors !== '') form.append('max_errors', maxErrors);
  if (maxErrorRate !== undefined && maxErrorRate !== '') form.append('max_error_rate', maxErrorRate);
  form.append('file', file, file.name);
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open('POST', '/jobs');
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (ev) => onProgress({ loaded: ev.loaded, total: ev.lengthComputable ? ev.total : file.size, done: false });
    xhr.upload.onload = () => onProgress({ loaded: file.size, total: file.size, done: true });
    xhr.onload = () => {
      const data = parse(xhr.responseText);
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(errorFrom(xhr.status, data, xhr.statusText));
    };
    xhr.onerror = () => reject(new ApiError(0, 'NETWORK', 'the upload failed: the gateway closed the connection or did not answer'));
    xhr.ontimeout = () => reject(new ApiError(0, 'TIMEOUT', 'the upload timed out'));
    xhr.onabort = () => reject(new ApiError(0, 'ABORTED', 'upload cancelled'));
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}
