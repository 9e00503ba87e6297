// settings.js -- who the console calls the API as. The tenant, the tenants
// used before and the tenant header's name live in localStorage (they
// survive a reload); the API key lives in sessionStorage (this tab only, so
// a shared browser does not keep it). Storage may be unavailable (private
// modes, blocked cookies): every read and write falls back to memory.

const memory = new Map();

function read(store, key, fallback) {
  try {
    const v = store.getItem(key);
    return v === null ? fallback : v;
  } catch {
    return memory.has(key) ? memory.get(key) : fallback;
  }
}

function write(store, key, value) {
  try {
    if (value === '' || value === null) store.removeItem(key);
    else store.setItem(key, value);
  } catch {
    memory.set(key, value);
  }
}

const local = globalThis.localStorage;
const session = globalThis.sessionStorage;

export const DEFAULT_TENANT = 'tenant_a'; // what the gateway uses without a header
export const TENANT_RX = /^[A-Za-z0-9._-]{1,64}$/; // SPEC 3, the gateway's check
export const HEADER_RX = /^[A-Za-z0-9-]{1,64}$/;

export function tenant() {
  const t = read(local, 'bok.console.tenant', DEFAULT_TENANT);
  return TENANT_RX.test(t) ? t : DEFAULT_TENANT;
}

/** Sets the tenant (valid only) and remembers it among the recent ones. */
export function setTenant(t) {
  if (!TENANT_RX.test(t)) throw new Error('invalid tenant id: use 1-64 characters of A-Z a-z 0-9 . _ -');
  write(local, 'bok.console.tenant', t);
  const list = [t, ...recentTenants().filter((x) => x !== t)].slice(0, 10);
  write(local, 'bok.console.tenants', JSON.stringify(list));
}

export function recentTenants() {
  try {
    const list = JSON.parse(read(local, 'bok.console.tenants', '[]'));
    return Array.isArray(list) ? list.filter((x) => typeof x === 'string' && TENANT_RX.test(x)) : [];
  } catch {
    return [];
  }
}

export function tenantHeader() {
  const h = read(local, 'bok.console.tenantHeader', 'X-Tenant-ID');
  return HEADER_RX.test(h) ? h : 'X-Tenant-ID';
}

export function setTenantHeader(h) {
  if (!HEADER_RX.test(h)) throw new Error('tenant header: use 1-64 characters of A-Z a-z 0-9 -');
  write(local, 'bok.console.tenantHeader', h);
}

export function apiKey() {
  return read(session, 'bok.console.apiKey', '');
}

export function setApiKey(k) {
  write(session, 'bok.console.apiKey', k.trim());
}
