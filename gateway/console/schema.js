// schema.js -- the model schema in the browser: parsing the editor's text
// (JSON syntax errors with line and column), the checks the model service
// makes (lib/rows/schema.c, with the same "properties.<name>.<keyword>:"
// messages, so the editor can point at the property before saving), and the
// columns a schema describes (SPEC 5 types) for the tables. The server stays
// the judge: its 400 message is shown at the property it names.

const ANNOTATIONS = new Set(['description', 'title', 'default', 'examples', '$comment', 'deprecated']);

/** The column type name of SPEC 5 for a property schema ('' if none fits). */
export function columnType(p) {
  if (!p || typeof p !== 'object') return '';
  switch (p.type) {
    case 'string': return 'format' in p ? 'TIMESTAMP' : p.enum ? 'CATEGORY' : 'STRING';
    case 'integer': return p.format ? 'TIMESTAMP' : 'INTEGER';
    case 'number': return 'FLOAT';
    case 'boolean': return 'BOOLEAN';
    case 'array': return 'VECTOR';
    default: return '';
  }
}

/** The constraints of a property as short text ("1 ≤ x ≤ 10", "one of a, b"). */
export function constraints(p) {
  const out = [];
  if (!p || typeof p !== 'object') return '';
  if (Array.isArray(p.enum)) out.push('one of ' + p.enum.map(String).join(', '));
  const range = (lo, hi, what) => {
    if (lo !== undefined && hi !== undefined) out.push(`${lo} ≤ ${what} ≤ ${hi}`);
    else if (lo !== undefined) out.push(`${what} ≥ ${lo}`);
    else if (hi !== undefined) out.push(`${what} ≤ ${hi}`);
  };
  range(p.minimum, p.maximum, 'value');
  range(p.minLength, p.maxLength, 'length');
  range(p.minItems, p.maxItems, 'items');
  if (p.type === 'array' && p.items && p.items.type) out.push('items: ' + p.items.type);
  if (p.format) out.push('format ' + p.format);
  return out.join('; ');
}

/** [{name, type, required, constraints, role, description}] of a schema. */
export function columns(schema) {
  if (!schema || typeof schema !== 'object' || !schema.properties || typeof schema.properties !== 'object') return [];
  const req = new Set(Array.isArray(schema.required) ? schema.required : []);
  const eventId = 'x-event-id' in schema ? schema['x-event-id'] : 'event_id';
  const eventTime = 'x-event-time' in schema ? schema['x-event-time'] : 'timestamp';
  return Object.entries(schema.properties).map(([name, p]) => ({
    name,
    type: columnType(p),
    required: req.has(name),
    constraints: constraints(p),
    role: name === eventId ? 'event id' : name === eventTime ? 'event time' : '',
    description: p && typeof p.description === 'string' ? p.description : '',
  }));
}

/** Where in `text` a JSON.parse error points: {line, column} or null. */
function errorPosition(text, message) {
  let m = /line (\d+) column (\d+)/.exec(message);
  if (m) return { line: +m[1], column: +m[2] };
  m = /position (\d+)/.exec(message);
  if (!m) return null;
  const before = text.slice(0, +m[1]);
  const line = before.split('\n').length;
  return { line, column: before.length - before.lastIndexOf('\n') };
}

/**
 * Parses and checks the editor's text. Returns {schema} when the service
 * would accept it, else {error, path, line?, column?} where `path` is the
 * property the message names ('' for the schema as a whole).
 */
export function check(text) {
  if (!text.trim()) return { error: 'schema: empty — write a JSON object or suggest one from a sample file', path: '' };
  let root;
  try {
    root = JSON.parse(text);
  } catch (e) {
    const pos = errorPosition(text, e.message);
    const where = pos ? ` (line ${pos.line}, column ${pos.column})` : '';
    return { error: 'schema: invalid JSON: ' + e.message.replace(/ in JSON at position \d+.*$/, '') + where, path: '', ...pos };
  }
  const fail = (msg) => ({ error: msg, path: propertyOf(msg) });
  if (!root || typeof root !== 'object' || Array.isArray(root)) return fail('schema: must be a JSON object');
  if (root.type !== 'object') return fail('schema.type: must be "object"');
  const props = root.properties;
  if (!props || typeof props !== 'object' || Array.isArray(props) || !Object.keys(props).length) {
    return fail('schema.properties: must be a non-empty object');
  }
  const types = {};
  for (const [name, p] of Object.entries(props)) {
    if (!name) return fail('properties: a property name must not be empty');
    const msg = checkProperty(name, p);
    if (msg) return fail(msg);
    types[name] = columnType(p);
  }
  if ('required' in root) {
    if (!Array.isArray(root.required)) return fail('required: must be an array of property names');
    for (const [i, r] of root.required.entries()) {
      if (typeof r !== 'string' || !(r in props)) {
        return fail(`required[${i}]: ${typeof r === 'string' ? `'${r}'` : 'value'} is not a property`);
      }
    }
  }
  if ('additionalProperties' in root && typeof root.additionalProperties !== 'boolean') {
    return fail('additionalProperties: must be true or false');
  }
  for (const [kw, ok, what] of [
    ['x-event-id', ['STRING', 'INTEGER'], 'the event id must be a string or integer'],
    ['x-event-time', ['TIMESTAMP', 'INTEGER'], 'the event time must be an integer unix-time or a string date-time'],
  ]) {
    const v = root[kw];
    if (v === null) continue;
    if (v !== undefined) {
      if (typeof v !== 'string') return fail(`${kw}: must be the name of a property`);
      if (!(v in props)) return fail(`${kw}: '${v}' is not a property`);
      if (!ok.includes(types[v])) return fail(`properties.${v}.type: ${what}`);
    } // absent: the default column (event_id, timestamp) counts only when its type fits; never an error
  }
  return { schema: root };
}

function checkProperty(name, p) {
  const at = `properties.${name}`;
  if (!p || typeof p !== 'object' || Array.isArray(p)) return `${at}: must be an object`;
  if (!('type' in p)) return `${at}.type: required`;
  if (typeof p.type !== 'string') return `${at}.type: must be a string`;
  const t = columnType(p);
  if (p.type === 'string' && 'format' in p && p.format !== 'date-time') {
    return `${at}.format: unsupported format for string (use "date-time")`;
  }
  if (p.type === 'string' && 'format' in p && 'enum' in p) return `${at}.enum: a date-time column takes no enum`;
  if (p.type === 'integer' && 'format' in p && p.format !== 'unix-time') {
    return `${at}.format: unsupported format for integer (use "unix-time")`;
  }
  if (p.type === 'array') {
    const it = p.items && typeof p.items === 'object' ? p.items.type : undefined;
    if (it !== 'number' && it !== 'integer') return `${at}.items: arrays must have items {"type":"number"}`;
  }
  if (!t) return `${at}.type: unsupported type '${p.type}'`;
  if ('format' in p && t !== 'TIMESTAMP') {
    return `${at}.format: only integer (unix-time) and string (date-time) columns take a format`;
  }
  if ('enum' in p && t !== 'CATEGORY') return `${at}.enum: only string columns take an enum`;
  const numeric = t === 'INTEGER' || t === 'FLOAT' || t === 'TIMESTAMP';
  const stringy = t === 'STRING' || t === 'CATEGORY';
  const count = (k, v) => (Number.isInteger(v) && v >= 0 ? '' : `${at}.${k}: must be a non-negative integer`);
  for (const [k, v] of Object.entries(p)) {
    if (k === 'type' || k === 'format' || k === 'items' || ANNOTATIONS.has(k)) continue;
    if (k === 'enum') {
      if (!Array.isArray(v) || !v.length) return `${at}.enum: must be a non-empty array of strings`;
      const bad = v.findIndex((x) => typeof x !== 'string');
      if (bad >= 0) return `${at}.enum[${bad}]: must be a string`;
    } else if (k === 'minimum' || k === 'maximum') {
      if (!numeric) return `${at}.${k}: only numeric columns take ${k}`;
      if (typeof v !== 'number') return `${at}.${k}: must be a number`;
    } else if (k === 'minLength' || k === 'maxLength') {
      if (!stringy) return `${at}.${k}: only string columns take ${k}`;
      const m = count(k, v);
      if (m) return m;
    } else if (k === 'minItems' || k === 'maxItems') {
      if (t !== 'VECTOR') return `${at}.${k}: only array columns take ${k}`;
      const m = count(k, v);
      if (m) return m;
    } else {
      return `${at}.${k}: unsupported keyword`;
    }
  }
  if (p.minimum !== undefined && p.maximum !== undefined && p.minimum > p.maximum) return `${at}.minimum: greater than maximum`;
  if (p.minLength !== undefined && p.maxLength !== undefined && p.minLength > p.maxLength) return `${at}.minLength: greater than maxLength`;
  if (p.minItems !== undefined && p.maxItems !== undefined && p.minItems > p.maxItems) return `${at}.minItems: greater than maxItems`;
  return '';
}

/**
 * The property a message is about: "properties.age.type: ..." -> "age"
 * (a message of the server or of check()); '' when it names none. A name
 * with dots is matched against `names` when given.
 */
export function propertyOf(message, names = []) {
  const m = /(?:^|\s|')properties\.(.+?):\s/.exec(message || '');
  if (!m) return '';
  const ref = m[1];
  const exact = names.filter((n) => ref === n || ref.startsWith(n + '.')).sort((a, b) => b.length - a.length);
  if (exact.length) return exact[0];
  return ref.split('.')[0];
}
