// Maintenance › Event Notify: the admin page of event-notify. Plain script, no framework, no
// build step; it talks only to the admin server's JSON API (/api/v1, see docs/ADMIN.md).
// State: the config as the server last sent it (S.cfg, with its ETag) and, apart from it, the
// admin's edits (S.ev per event, S.dl for delivery): a refused or stale save never loses them.
'use strict';
(() => {
const $ = (id) => document.getElementById(id);
const S = { csrf: '', user: '', events: [], vars: [], cfg: null, etag: '', ev: {}, dl: {},
  status: {}, rows: {}, open: null, probs: {}, busy: false, timer: 0, savedAt: '' };

// When each of the guide's twenty events fires.
const WHEN = {
  incoming_call: 'A call comes in and the phone rings.',
  outgoing_call: 'The phone places a call.',
  establish_call: 'A call is answered: talk begins.',
  terminate_call: 'A call ends, answered or not.',
  off_hook: 'The handset is lifted.',
  on_hook: 'The handset is put down.',
  missed_call: 'An incoming call ended without being answered here.',
  hold_call: 'A call is put on hold.',
  resume_call: 'A held call is resumed.',
  booting_completed: 'The phone has started (sent once the network is up).',
  blind_transferring: 'This phone transfers a call without consulting first.',
  attended_transferring: 'This phone transfers a call after consulting the target.',
  registration: 'An account registers with its SIP server.',
  sign_off: 'An account unregisters from its SIP server.',
};
for (const [k, n] of [['dnd', 'Do Not Disturb'], ['call_forwarding', 'Call forwarding'], ['syslog', 'Syslog']])
  for (const o of ['on', 'off']) WHEN[k + '_' + o] = n + ' is switched ' + o + '.';
// Delivery settings: label, unit, what it does.
const DL = {
  connect_timeout_ms: ['Connect timeout', 'ms', 'TCP (and TLS) connect.'],
  timeout_ms: ['Request timeout', 'ms', 'The whole attempt, connect included.'],
  attempts: ['Attempts', '', 'The first included; 0 = until delivered.'],
  max_age_s: ['Give up after', 's', 'A notification still failing this long is dropped; 0 = never.'],
  backoff_initial_ms: ['First retry after', 'ms', 'Doubles after each failed attempt.'],
  backoff_max_ms: ['Longest wait between retries', 'ms', 'The back-off never grows past this.'],
  shutdown_flush_ms: ['Flush on shutdown', 'ms', 'How long a stop waits for pending sends.'],
  ca_file: ['Extra CA certificates', '', 'PEM file trusted for https, beside the built-in roots.'],
  'spool.path': ['Spool file', '', 'Keeps what waits for a retry across restarts; blank = memory only.'],
  'spool.max_bytes': ['Spool size', 'bytes', 'Its cap on the data partition.'],
};
const RESULT = { 'connect-error': 'cannot connect', timeout: 'timed out', 'tls-error': 'TLS error',
  'io-error': 'connection error', redirect: 'redirected' };
const FIELDS = ['url', 'enabled', 'method', 'body', 'content_type', 'username'], SECRETS = ['password', 'signing_secret'];
// Per-event counters are totals since start; only the daemon-wide ones have "pending".
const COUNTERS = ['delivered', 'retried', 'failed', 'dropped'];

// h('div.a.b', {attr}, ...children) builds an element; text always goes in as text, never HTML.
function h(sel, attrs, ...kids) {
  const [tag, ...cls] = sel.split('.');
  const el = document.createElement(tag);
  el.className = cls.join(' ');
  if (tag === 'button') el.type = 'button';
  if (tag === 'input' || tag === 'textarea') el.spellcheck = false, el.autocomplete = 'off', el.autocapitalize = 'off';
  for (const k in attrs) {
    const v = attrs[k];
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  el.append(...kids.flat().filter((c) => c != null && c !== false));
  return el;
}
const show = (el, on) => { el.hidden = !on; };
const plural = (n, w) => n + ' ' + w + (n === 1 ? '' : 's');
const ago = (s) => s < 60 ? s + ' s' : s < 3600 ? Math.round(s / 60) + ' min' : s < 86400 ? Math.round(s / 3600) + ' h' : Math.round(s / 86400) + ' d';
const keys = (o) => Object.keys(o).length;

// API: every call goes through here (CSRF header on writes; a 401 means the session ended).
async function api(method, path, body, hdrs) {
  const headers = { Accept: 'application/json', 'X-Requested-With': 'XMLHttpRequest', ...hdrs };
  if (body) headers['Content-Type'] = 'application/json';
  if (method !== 'GET') headers['X-CSRF-Token'] = S.csrf;
  let r, data = {};
  try {
    r = await fetch('/api/v1/' + path, { method, headers, credentials: 'same-origin', cache: 'no-store', body: body && JSON.stringify(body) });
    const t = await r.text();
    if (t) try { data = JSON.parse(t) || {}; } catch (e) { data = { error: t.slice(0, 200) }; }
  } catch (e) {
    return { status: 0, data: { error: 'the phone did not answer (' + e.message + ')' } };
  }
  if (r.status === 401 && path !== 'login' && S.cfg) lost();
  return { status: r.status, data, etag: r.headers.get('ETag') };
}
const errText = (r) => r.data.error || (r.status ? 'HTTP ' + r.status : 'no answer');

// Login and logout
function view(app) {
  show($('app-view'), app); show($('who'), app); show($('login-view'), !app);
}
function showLogin(msg) {
  stopPoll(); view(false);
  const m = $('login-msg');
  m.textContent = msg || ''; m.className = 'msg'; show(m, !!msg);
  $('login-pass').value = '';
  $(msg && $('login-user').value ? 'login-pass' : 'login-user').focus();
}
const lost = () => showLogin('Your session has ended. Sign in again' + (dirty() ? ': your unsaved changes are kept.' : '.'));
async function login(e) {
  e.preventDefault();
  const user = $('login-user').value.trim(), pw = $('login-pass').value, m = $('login-msg'), btn = $('login-btn');
  const say = (t) => { m.className = 'msg err'; m.textContent = t; show(m, true); };
  if (!user || !pw) return say('Enter the user name and the password.');
  btn.disabled = true;
  const r = await api('POST', 'login', { user, password: pw });
  $('login-pass').value = '';
  btn.disabled = false;
  if (r.status === 200) { S.csrf = r.data.csrf_token; S.user = r.data.user || user; return enter(); }
  if (r.status === 429) say('Too many failed sign-ins: locked, try again in ' + (r.data.retry_after_s || 60) + ' s.');
  else say(r.status === 401 ? 'Wrong user name or password.' : 'Sign-in refused: ' + errText(r));
  $('login-pass').focus();
}
async function logout() {
  if (dirty() && !confirm('You have unsaved changes. Log out and lose them?')) return;
  await api('POST', 'logout');
  S.cfg = null; S.ev = {}; S.dl = {}; S.csrf = ''; S.probs = {};
  showLogin('You have logged out.');
}

// Loading
async function enter() {
  view(true);
  $('who-name').textContent = S.user;
  if (!S.events.length) {
    const [e, v] = await Promise.all([api('GET', 'events'), api('GET', 'variables')]);
    if (e.status !== 200 || v.status !== 200) return banner('err', 'Cannot load the event list: ' + errText(e.status !== 200 ? e : v));
    S.events = e.data; S.vars = v.data;
  }
  if (await loadConfig()) { rebuild(); poll(); }
}
async function loadConfig() {
  const r = await api('GET', 'config');
  if (r.status !== 200) { banner('err', 'Cannot load the configuration: ' + errText(r)); return false; }
  S.cfg = r.data; S.etag = r.etag || '';
  // Keep only the edits that still differ from what is stored now.
  for (const k in S.ev) for (const f of FIELDS) if (f in S.ev[k] && same(S.ev[k][f], srv(k)[f])) delete S.ev[k][f];
  for (const k in S.ev) if (!keys(S.ev[k])) delete S.ev[k];
  for (const f in S.dl) if (String(S.dl[f]) === String(dlSrv(f))) delete S.dl[f];
  return true;
}
const srv = (k) => (S.cfg.events || {})[k] || { url: '', enabled: true, method: 'GET', body: '', content_type: 'form', username: '' };
const same = (a, b) => (a == null ? '' : a) === (b == null ? '' : b);
const val = (k, f) => S.ev[k] && f in S.ev[k] ? S.ev[k][f] : srv(k)[f];
const isOn = (k) => !!val(k, 'url') && val(k, 'enabled') !== false;
const dirty = () => keys(S.ev) + keys(S.dl) > 0;
// 'spool.path' -> o.spool.path
const dot = (o, f) => f.split('.').reduce((a, b) => (a || {})[b], o) ?? '';
const dlSrv = (f) => dot(S.cfg.delivery, f);
function setEv(k, f, v) {
  const e = S.ev[k] || (S.ev[k] = {});
  if (v === undefined || (FIELDS.includes(f) && same(v, srv(k)[f]))) delete e[f]; else e[f] = v;
  if (!keys(e)) delete S.ev[k];
  delete S.probs['events.' + k + '.' + f.replace('clear_', '')];
  refreshRow(k); saveState();
}

// One event as sent to the API: its stored form with the edits applied. A secret (password,
// signing secret): absent keeps the stored one, '' removes it. Headers: sent only when edited
// (a credential header's **** keeps its stored value).
function evObj(k) {
  const o = {}, e = S.ev[k] || {};
  for (const f of FIELDS) if (val(k, f) !== undefined) o[f] = val(k, f);
  for (const f of SECRETS) if (e[f] || e['clear_' + f]) o[f] = e[f] || '';
  if (e.headers) o.headers = Object.fromEntries(e.headers.filter(([n]) => n.trim()).map(([n, v]) => [n.trim(), v]));
  return o;
}
function putBody() {
  const out = JSON.parse(JSON.stringify(S.cfg)), d = out.delivery || (out.delivery = {});
  delete out.delivery_defaults;
  out.events = {};
  for (const { key } of S.events) out.events[key] = evObj(key);
  for (const f in S.dl) {
    const v = String(S.dl[f]).trim(), [a, b] = f.split('.'), o = b ? d[a] || (d[a] = {}) : d, g = b || a;
    if (v === '') delete o[g];
    else o[g] = /^\d+$/.test(v) && typeof dot(S.cfg.delivery_defaults, f) !== 'string' ? +v : v;
  }
  return out;
}

// The list of events
function rebuild() {
  const ul = $('events'), open = S.open;
  ul.textContent = ''; S.rows = {}; S.open = null;
  for (const ev of S.events) ul.append(row(ev));
  buildDelivery();
  for (const ev of S.events) refreshRow(ev.key);
  $('ev-count').textContent = S.events.length + ' events, in the order of the guide';
  saveState();
  if (open) toggle(open);
}
function row(ev) {
  const k = ev.key, r = S.rows[k] = {}, aliases = (ev.aliases || []).join(', '), hid = { 'aria-hidden': 'true' };
  r.url = h('span.url.mono');
  r.st = h('span.last');
  r.cnt = h('span');
  r.mark = h('span.badge.warn', { text: 'unsaved' });
  r.err = h('span.badge.bad', { text: 'refused' });
  r.toggle = h('button.row-toggle', { 'aria-expanded': 'false', 'aria-controls': 'ed-' + k, onclick: () => toggle(k) },
    h('span.chev', hid),
    h('span.name', {}, h('span.label', { text: ev.label }), r.mark, r.err,
      h('span.key.mono', { text: k, title: aliases && 'Also accepted as: ' + aliases })),
    h('span.what', {}, r.url, h('span.result', {}, r.st, r.cnt)));
  r.sw = h('button.switch', { role: 'switch', 'aria-label': ev.label + ' on', onclick: () => flip(k) }, h('span.knob', hid), h('span.sw-text', hid));
  r.test = h('button.btn.small', { 'aria-label': 'Send test: ' + ev.label, text: 'Send test', onclick: () => sendTest(k) });
  r.out = h('div.test-out', { role: 'status', hidden: true });
  r.ed = h('form.editor', { id: 'ed-' + k, hidden: true, novalidate: true, onsubmit: (e) => e.preventDefault() });
  return r.li = h('li.ev', { id: 'ev-' + k }, h('div.row-head', {}, r.toggle, h('div.row-ctl', {}, r.test, r.sw)), r.out, r.ed);
}
function refreshRow(k) {
  const r = S.rows[k];
  if (!r) return;
  const url = val(k, 'url') || '', on = isOn(k);
  r.url.textContent = url ? (val(k, 'method') === 'POST' ? 'POST ' : '') + url : 'No URL set';
  r.url.classList.toggle('none', !url);
  r.sw.setAttribute('aria-checked', on);
  r.sw.lastChild.textContent = on ? 'ON' : 'OFF';
  r.li.classList.toggle('on', on);
  r.li.classList.toggle('dirty', !!S.ev[k]);
  show(r.mark, !!S.ev[k]);
  show(r.err, Object.keys(S.probs).some((p) => p.startsWith('events.' + k + '.')));
  r.test.classList.toggle('gone', !url);
  refreshStatus(k);
  $('summary').textContent = S.events.filter((ev) => isOn(ev.key)).length + ' of ' + S.events.length + ' events on';
}
// The last delivery result and the counters of one event (from GET /status).
function refreshStatus(k) {
  const r = S.rows[k], s = S.status[k] || {}, l = s.last, c = s.counters || {};
  let text = val(k, 'url') ? 'never sent' : '', cls = '';
  if (l) {
    const code = l.status ? 'HTTP ' + l.status : RESULT[l.result] || l.result, when = l.ago_s != null ? ' ' + ago(l.ago_s) + ' ago' : '';
    cls = 'bad';
    if (l.status >= 200 && l.status < 300) text = 'delivered' + when + ': ' + l.status, cls = 'ok';
    else if (l.retry_in_s != null) text = 'failing: ' + code + ', retry in ' + ago(l.retry_in_s) + (l.attempt ? ' (attempt ' + l.attempt + ')' : '');
    else text = 'failed' + when + ': ' + code + (l.location ? ' → ' + l.location : '');
  } else if (c.queued > (c.delivered || 0) + (c.failed || 0) + (c.dropped || 0)) text = 'sending…';
  r.st.textContent = text; r.st.className = 'last ' + cls;
  r.cnt.textContent = COUNTERS.filter((n) => c[n]).map((n) => ' · ' + c[n] + ' ' + n).join('');
}

// One event's editor
function toggle(k, focusUrl) {
  if (S.open && S.open !== k) close(S.open);
  if (S.open === k && !focusUrl) return close(k, true);
  const r = S.rows[k];
  if (S.open !== k) { S.open = k; r.ed.append(...editor(k)); show(r.ed, true); }
  r.toggle.setAttribute('aria-expanded', 'true'); r.li.classList.add('open');
  check(k, 0);
  if (focusUrl) $('f-' + k + '-url').focus();
}
function close(k, focus) {
  const r = S.rows[k];
  show(r.ed, false); r.ed.textContent = ''; r.li.classList.remove('open');
  r.toggle.setAttribute('aria-expanded', 'false');
  S.open = null;
  if (focus) r.toggle.focus();
}
// A labelled field; its problems go in #ID-p, its hint in #ID-h.
function field(id, label, input, hint, extra) {
  input.id = id;
  input.setAttribute('aria-describedby', id + '-h ' + id + '-p');
  return h('div.field', {}, h('label', { for: id, text: label }, extra), input,
    hint && h('p.hint', { id: id + '-h', text: hint }), h('div.probs', { id: id + '-p', 'aria-live': 'polite' }));
}
function editor(k) {
  const ev = S.events.find((x) => x.key === k), s = srv(k), id = 'f-' + k + '-';
  let target = null; // the template field the palette inserts into
  const tpl = (f, el) => {
    el.addEventListener('focus', () => { target = el; });
    if (f) el.addEventListener('input', () => { setEv(k, f, el.value); check(k); });
    return el;
  };
  const url = tpl('url', h('input.mono', { inputmode: 'url', value: val(k, 'url') || '', placeholder: '192.168.5.10:8080/event?from=$remote' }));
  const body = tpl('body', h('textarea.mono', { rows: 3, value: val(k, 'body') || '' }));
  const ctype = h('select', { onchange: () => { setEv(k, 'content_type', ctype.value); check(k); } },
    [['form', 'Form (application/x-www-form-urlencoded)'], ['json', 'JSON (application/json)'], ['text', 'Text (text/plain)']]
      .map(([v, t]) => h('option', { value: v, text: t })));
  ctype.value = val(k, 'content_type') || 'form';
  const post = h('div', { hidden: val(k, 'method') !== 'POST' },
    field(id + 'body', 'Body', body, 'Values are encoded for the content type.'), field(id + 'content_type', 'Content type', ctype));
  const method = h('fieldset.seg', {}, h('legend', { text: 'Method' }), ['GET', 'POST'].map((m) => h('label', {},
    h('input', { type: 'radio', name: id + 'm', checked: (val(k, 'method') || 'GET') === m, onchange: () => { setEv(k, 'method', m); show(post, m === 'POST'); check(k); } }),
    h('span', { text: m }))));
  const pal = S.vars.map((v) => h('button.var', { title: v.aliases && v.aliases.length ? 'Also: $' + v.aliases.join(', $') : null,
    onclick: () => insertVar(target || url, v.name) }, h('code', { text: '$' + v.name }), h('span', { text: v.description || '' })));
  const user = h('input', { value: val(k, 'username') || '', oninput: () => { setEv(k, 'username', user.value); check(k); } });
  // A secret is write-only: the field starts empty; a badge tells whether one is stored.
  const secret = (f, label, what, hint) => {
    const badge = h('span.badge'), c = 'clear_' + f, set = s[f + '_set'];
    const pw = h('input', { type: 'password', autocomplete: 'new-password', oninput: () => { setEv(k, f, pw.value || undefined); ui(); check(k); } });
    const rm = h('button.btn.small', { onclick: () => {
      const clear = !(S.ev[k] || {})[c];
      pw.value = '';
      setEv(k, f, undefined); setEv(k, c, clear || undefined);
      ui(); check(k);
    } });
    const ui = () => {
      const e = S.ev[k] || {}, clear = !!e[c];
      badge.textContent = clear ? 'will be removed' : e[f] ? 'new' : set ? 'set' : 'not set';
      badge.className = 'badge ' + (clear ? 'bad' : e[f] ? 'warn' : set ? 'ok' : '');
      pw.placeholder = clear ? 'removed on save' : set ? 'leave blank to keep' : 'none';
      pw.disabled = clear;
      rm.textContent = (clear ? 'Keep ' : 'Remove ') + what;
      show(rm, set || clear);
    };
    ui();
    const el = field(id + f, label + ' ', pw, 'Write-only: never shown. Leave blank to keep it.' + hint, badge);
    el.insertBefore(h('div.pw-row', {}, pw, rm), el.children[1]);
    return el;
  };
  // Extra headers: name/value rows; a credential header shows ****, which keeps its value.
  const hdrs = () => (S.ev[k] || {}).headers || Object.entries(s.headers || {});
  const hl = h('div.hdrs');
  const hSet = (a) => { setEv(k, 'headers', a); check(k); };
  const hUi = () => {
    hl.replaceChildren(...hdrs().map(([n, v], i) => h('div.pw-row.hdr', {},
      h('input.mono', { value: n, placeholder: 'Name', 'aria-label': 'Header name', oninput: (e) => hSet(hdrs().map((p, j) => j === i ? [e.target.value, p[1]] : p)) }),
      tpl(null, h('input.mono', { value: v, placeholder: 'Value', 'aria-label': 'Header value', oninput: (e) => hSet(hdrs().map((p, j) => j === i ? [p[0], e.target.value] : p)) })),
      h('button.btn.small', { text: 'Remove', onclick: () => { hSet(hdrs().filter((_, j) => j !== i)); hUi(); } }))),
    h('button.btn.small', { text: 'Add header', onclick: () => { hSet([...hdrs(), ['', '']]); hUi(); const i = hl.querySelectorAll('input'); i[i.length - 2].focus(); } }));
  };
  hUi();
  const aliases = (ev.aliases || []).join(', ');
  return [
    h('p.when', {}, WHEN[k] || '', aliases && h('span.small.muted', { text: ' Also accepted as: ' + aliases + '.' })),
    field(id + 'url', 'URL', url, 'The scheme may be left out (http:// is assumed). Credentials may be given as user:password@host.'),
    h('details.pal-wrap', { open: matchMedia('(min-width: 721px)').matches }, h('summary.pal-title', { text: 'Insert a variable at the cursor' }),
      h('div.palette', { role: 'group', 'aria-label': 'Variables' }, pal)),
    method, post,
    h('div.cols', {}, field(id + 'username', 'User name (HTTP Basic)', user), secret('password', 'Password', 'password', '')),
    h('div.cols', {}, field(id + 'headers', 'Extra headers', hl, 'Values may hold $variables. A credential header shows ****: leave it to keep its value.'),
      secret('signing_secret', 'Signing secret', 'secret', ' Signs each request (HMAC-SHA256); blank uses the delivery secret.')),
    h('div.preview', {}, h('p.pv-title', { text: 'Preview with sample values' }), h('pre.mono.pv', { id: 'pv-' + k, 'aria-live': 'polite' })),
    h('div.ed-actions', {}, h('button.btn', { text: 'Send test', onclick: () => sendTest(k) }), h('button.btn.ghost', { text: 'Close', onclick: () => close(k, true) })),
  ];
}
// Inserts $name at the cursor; ${name} when a letter or digit follows, so the name stays apart.
function insertVar(el, name) {
  const a = el.selectionStart ?? el.value.length, b = el.selectionEnd ?? a;
  el.focus();
  el.setRangeText(/\w/.test(el.value.charAt(b)) ? '${' + name + '}' : '$' + name, a, b, 'end');
  el.dispatchEvent(new Event('input'));
}

// As-you-type check: the server's preview applies the rules of `event-notify check`.
let checkSeq = 0, checkTimer = 0;
function check(k, delay = 300) {
  clearTimeout(checkTimer);
  checkTimer = setTimeout(async () => {
    const seq = ++checkSeq, r = await api('POST', 'events/' + k + '/preview', evObj(k)), pv = $('pv-' + k);
    if (seq !== checkSeq || S.open !== k) return;
    if (r.status !== 200) { pv.textContent = 'Preview unavailable: ' + errText(r); return; }
    const live = {}, q = r.data.request;
    for (const p of r.data.problems || []) (live[p.field] = live[p.field] || []).push(p);
    paintProbs(k, live);
    pv.classList.toggle('none', !q);
    pv.textContent = !q ? (val(k, 'url') ? 'No request can be made until the problems above are fixed.' : 'Set a URL to see the request.')
      : [q.line, ...(q.headers || []).map(([a, b]) => a + ': ' + b), ...(q.body ? ['', q.body] : [])].join('\n');
  }, delay);
}
// Problems under each field of the open editor: the live check's, else the last save's.
function paintProbs(k, live = {}) {
  for (const box of S.rows[k].ed.querySelectorAll('.probs')) {
    const input = $(box.id.slice(0, -2)), path = 'events.' + k + '.' + input.id.slice(k.length + 3);
    const all = { ...S.probs, ...live }, list = Object.keys(all).filter((q) => q === path || q.startsWith(path + '.')).flatMap((q) => all[q]);
    box.textContent = '';
    input.setAttribute('aria-invalid', list.some((p) => !isWarn(p)));
    box.append(...list.map((p) => problem(p, input)));
  }
}
const isWarn = (p) => p.severity === 'warning' || p.warning || /^warning/.test(p.text || '');
// One problem: its message, and for a template the text around the column with that column marked.
function problem(p, input) {
  const el = h('div.prob' + (isWarn(p) ? '.warn' : ''), {}, h('span.prob-msg', { text: (p.column ? 'Column ' + p.column + ': ' : '') + p.message }));
  if (p.column && input) {
    const v = input.value, c = p.column - 1;
    el.append(h('code.where.mono', {}, v.slice(Math.max(0, c - 40), c), h('mark', { text: v.charAt(c) || ' ' }), v.slice(c + 1, c + 41)),
      h('button.link', { text: 'Go to column ' + p.column, onclick: () => { input.focus(); input.setSelectionRange(c, c + 1); } }));
  }
  return el;
}

// ON/OFF and Send test
function flip(k) {
  setEv(k, 'enabled', !isOn(k));
  if (isOn(k) || !val(k, 'enabled')) return;
  toggle(k, true); // ON without a URL: ask for one
}
async function sendTest(k) {
  const r = S.rows[k], o = r.out;
  r.test.disabled = true;
  show(o, true); o.className = 'test-out'; o.textContent = 'Sending a test request…';
  const t = await api('POST', 'events/' + k + '/test', S.ev[k] ? { event: evObj(k) } : {}), d = t.data;
  r.test.disabled = false;
  o.textContent = '';
  if (t.status !== 200) {
    o.className = 'test-out bad';
    return o.append(h('b', { text: 'Test not sent: ' }), errText(t));
  }
  o.className = 'test-out ' + (d.ok && d.status < 300 ? 'ok' : 'bad');
  o.append(h('button.link.dismiss', { 'aria-label': 'Dismiss the test result', text: '×', onclick: () => show(o, false) }),
    h('code.mono', { text: d.request_line || '' }), ' → ', h('b', { text: d.status ? 'HTTP ' + d.status : 'failed: ' + (d.error || 'no answer') }),
    d.elapsed_ms != null ? ' in ' + d.elapsed_ms + ' ms' : '', d.status && d.error ? ' (' + d.error + ')' : '');
}

// Delivery settings: each shows its default; a blank field means the default.
function buildDelivery() {
  const g = $('delivery'), cur = S.cfg.delivery || {}, def = S.cfg.delivery_defaults || {};
  g.textContent = '';
  for (const f of [...new Set([...Object.keys(DL).filter((f) => f.split('.')[0] in { ...cur, ...def }), ...Object.keys(cur).filter((f) => !/_set$|^spool$/.test(f))])]) {
    const [label, unit, what] = DL[f] || [f.replace(/_/g, ' '), '', ''], d = dot(def, f), num = typeof d === 'number' || /max_bytes/.test(f), id = 'dl-' + f;
    const inp = h('input' + (num ? '.num' : ''), { inputmode: num ? 'numeric' : null, value: f in S.dl ? S.dl[f] : dlSrv(f), placeholder: d });
    const el = field(id, label, inp, what + ' ');
    const note = el.querySelector('.hint').appendChild(h('span'));
    const upd = () => {
      const v = inp.value.trim();
      note.textContent = d === '' ? '' : v === '' || String(d) === v ? 'Default.' : 'Default: ' + d + (unit && ' ' + unit) + '.';
    };
    inp.addEventListener('input', () => {
      if (inp.value.trim() === String(dlSrv(f))) delete S.dl[f]; else S.dl[f] = inp.value;
      delete S.probs['delivery.' + f];
      upd(); paintDl(); saveState();
    });
    upd();
    el.insertBefore(h('div.unit-wrap', {}, inp, unit && h('span.unit', { text: unit })), el.children[1]);
    g.append(el);
  }
  paintDl();
}
function paintDl() {
  for (const box of $('delivery').querySelectorAll('.probs')) {
    const inp = $(box.id.slice(0, -2)), f = inp.id.slice(3), list = S.probs['delivery.' + f] || [];
    box.textContent = '';
    box.append(...list.map((p) => problem(p)));
    inp.setAttribute('aria-invalid', list.length > 0);
    inp.classList.toggle('changed', f in S.dl);
  }
}

// Save: the whole config with If-Match; "in force" only when the server says so.
function saveState(text, cls = '') {
  const n = keys(S.ev) + keys(S.dl), el = $('save-state');
  $('save').disabled = $('discard').disabled = S.busy || !n;
  $('savebar').classList.toggle('dirty', n > 0);
  if (!text && n) text = plural(n, 'unsaved change'), cls = 'dirty';
  if (!text) text = S.savedAt ? 'Saved, in force (' + S.savedAt + ')' : 'No unsaved changes.', cls = S.savedAt ? 'ok' : '';
  el.textContent = text; el.className = 'save-state ' + cls;
}
function banner(cls = '', ...kids) {
  const b = $('save-msg');
  b.textContent = ''; b.className = 'msg banner ' + cls;
  b.append(...kids); show(b, kids.length > 0);
}
async function save() {
  if (S.busy || !dirty()) return;
  S.busy = true; saveState('Saving…'); banner();
  const r = await api('PUT', 'config', putBody(), { 'If-Match': S.etag });
  S.busy = false;
  if (r.status === 200) {
    S.ev = {}; S.dl = {}; S.probs = {};
    S.savedAt = new Date().toLocaleTimeString([], { hour12: false });
    if (await loadConfig()) rebuild();
    if (r.data.in_force === false) saveState('Saved, but the phone has not taken it yet.', 'warn');
    return pollNow();
  }
  if (r.status === 422) {
    const all = r.data.problems || [];
    S.probs = {};
    for (const p of all) (S.probs[p.field] = S.probs[p.field] || []).push(p);
    for (const ev of S.events) refreshRow(ev.key);
    if (S.open) paintProbs(S.open);
    paintDl();
    banner('err', h('p', {}, h('b', { text: 'Not saved: nothing was changed.' }), ' ' + (all.length ? plural(all.length, 'problem') + ' to fix:' : errText(r))),
      h('ul', {}, all.map((p) => h('li', {}, h('button.link', { text: where(p.field), onclick: () => goTo(p.field) }),
        ': ' + (p.column ? 'column ' + p.column + ': ' : '') + p.message))));
  } else if (r.status === 412 || r.status === 428) {
    banner('err', h('p', {}, h('b', { text: 'Not saved: someone else changed the configuration since you loaded it.' }),
      ' Your changes are kept: load the current configuration (yours stay on top), review, and save again.'),
    h('button.btn.small', { text: 'Load the current configuration', onclick: async () => { if (await loadConfig()) { rebuild(); banner(); } } }));
  } else banner('err', h('p', {}, h('b', { text: 'Not saved: ' }), errText(r)));
  saveState(r.status === 422 ? 'Not saved: fix the fields marked below.' : 'Not saved.', 'bad');
}
// "events.incoming_call.url" -> "Incoming Call · url"; goTo() opens and focuses that field.
const parse = (field) => /^(events|delivery)\.([^.]+)\.?(.*)$/.exec(field || '') || [];
function where(field) {
  const [, sec, k, f] = parse(field), ev = S.events.find((e) => e.key === k);
  if (sec === 'events') return (ev ? ev.label : k) + (f ? ' · ' + f.replace('_', ' ') : '');
  return sec ? 'Delivery · ' + (DL[k] ? DL[k][0] : k) : field || 'Configuration';
}
function goTo(field) {
  const [, sec, k, f] = parse(field);
  if (sec === 'events' && S.rows[k] && S.open !== k) toggle(k);
  const el = $(sec === 'events' ? 'f-' + k + '-' + (f || 'url') : 'dl-' + k);
  if (el) el.focus();
}
function discard() {
  if (!confirm('Discard all unsaved changes?')) return;
  S.ev = {}; S.dl = {}; S.probs = {}; banner();
  rebuild();
}

// Status: polled every 5 s while the page is visible.
function stopPoll() { clearTimeout(S.timer); }
function pollNow() { stopPoll(); poll(); }
async function poll() {
  stopPoll();
  if (!document.hidden) {
    const r = await api('GET', 'status'), c = r.data.counters || {};
    if (r.status === 401) return;
    if (r.status === 200) {
      S.status = {};
      for (const e of r.data.events || []) S.status[e.key] = e;
      for (const ev of S.events) if (S.rows[ev.key]) refreshStatus(ev.key);
      $('foot').textContent = 'event-notify ' + (r.data.version || '') + ' · up ' + ago(r.data.uptime_s || 0) + [...COUNTERS, 'pending'].map((n) => ' · ' + (c[n] || 0) + ' ' + n).join('');
    }
  }
  if (S.cfg) S.timer = setTimeout(poll, 5000);
}

addEventListener('DOMContentLoaded', async () => {
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  $('save').addEventListener('click', save);
  $('discard').addEventListener('click', discard);
  document.addEventListener('visibilitychange', () => { if (!document.hidden && S.cfg) pollNow(); });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && S.open && S.rows[S.open].ed.contains(document.activeElement)) close(S.open, true);
  });
  addEventListener('beforeunload', (e) => { if (dirty()) { e.preventDefault(); e.returnValue = ''; } });
  const r = await api('GET', 'session');
  if (r.status === 200) { S.csrf = r.data.csrf_token; S.user = r.data.user; enter(); } else showLogin();
});
})();
