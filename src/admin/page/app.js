// Maintenance › Event Notify: the admin page of event-notify. Plain script, no framework, no
// build step; it talks only to the admin server's JSON API (/api/v1, see docs/ADMIN.md).
// State: the config as the server last sent it (S.cfg, with its ETag) plus the admin's edits
// kept apart (S.ev, S.dl), so a refused or stale save never loses what was typed.
'use strict';
(() => {
const $ = (id) => document.getElementById(id);
const API = '/api/v1/';
const S = { csrf: '', user: '', events: [], vars: [], cfg: null, etag: '', ev: {}, dl: {},
  status: {}, rows: {}, open: null, probs: {}, busy: false, timer: 0, savedAt: '' };

// Event descriptions: when each of the guide's twenty events fires.
const WHEN = {
  incoming_call: 'A call comes in and the phone rings.',
  outgoing_call: 'The phone places a call.',
  establish_call: 'A call is answered: talk begins.',
  terminate_call: 'A call ends, answered or not.',
  off_hook: 'The handset is lifted.',
  on_hook: 'The handset is put down.',
  missed_call: 'An incoming call ended without being answered here.',
  dnd_on: 'Do Not Disturb is switched on.',
  dnd_off: 'Do Not Disturb is switched off.',
  call_forwarding_on: 'Call forwarding is switched on.',
  call_forwarding_off: 'Call forwarding is switched off.',
  hold_call: 'A call is put on hold.',
  resume_call: 'A held call is resumed.',
  syslog_on: 'Syslog is switched on.',
  syslog_off: 'Syslog is switched off.',
  booting_completed: 'The phone has finished starting (sent once the network is up).',
  blind_transferring: 'This phone transfers a call without consulting first.',
  attended_transferring: 'This phone transfers a call after consulting the target.',
  registration: 'An account registers with its SIP server.',
  sign_off: 'An account unregisters from its SIP server.',
};
// Delivery settings: label, unit, what it does.
const DL = {
  connect_timeout_ms: ['Connect timeout', 'ms', 'TCP (and TLS) connect.'],
  timeout_ms: ['Request timeout', 'ms', 'The whole attempt, connect included.'],
  attempts: ['Attempts', '', 'Per notification, the first included; 0 = until delivered.'],
  backoff_initial_ms: ['First retry after', 'ms', 'Doubles after each failed attempt (with jitter).'],
  backoff_max_ms: ['Longest wait between retries', 'ms', 'The back-off never grows past this.'],
  shutdown_flush_ms: ['Flush on shutdown', 'ms', 'How long a stop waits for pending notifications.'],
  ca_file: ['Extra CA certificates', '', 'PEM file trusted for https, beside the built-in roots.'],
};
const RESULT = { 'connect-error': 'cannot connect', timeout: 'timed out', 'tls-error': 'TLS error',
  'io-error': 'connection error', redirect: 'redirected' };
const FIELDS = ['url', 'enabled', 'method', 'body', 'content_type', 'username'];

// h('div.a.b', {attr}, ...children): builds an element. Text goes in as text, never as HTML.
function h(sel, attrs, ...kids) {
  const [tag, ...cls] = sel.split('.');
  const el = document.createElement(tag);
  if (cls.length) el.className = cls.join(' ');
  for (const k in attrs || {}) {
    const v = attrs[k];
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of kids.flat()) if (c != null && c !== false) el.append(c);
  return el;
}
const show = (el, on) => { el.hidden = !on; };
const plural = (n, w) => n + ' ' + w + (n === 1 ? '' : 's');
function ago(s) {
  if (s < 60) return s + ' s';
  if (s < 3600) return Math.round(s / 60) + ' min';
  if (s < 86400) return Math.round(s / 3600) + ' h';
  return Math.round(s / 86400) + ' d';
}

// ---- API -------------------------------------------------------------------------------------
async function api(method, path, body, hdrs) {
  const headers = Object.assign({ Accept: 'application/json' }, hdrs);
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET') headers['X-CSRF-Token'] = S.csrf;
  let r;
  try {
    r = await fetch(API + path, { method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    return { status: 0, data: { error: 'the phone did not answer (' + e.message + ')' } };
  }
  let data = {};
  const t = await r.text();
  if (t) try { data = JSON.parse(t); } catch (e) { data = { error: t.slice(0, 200) }; }
  if (r.status === 401 && path !== 'login' && S.cfg) lost();
  return { status: r.status, data: data || {}, etag: r.headers.get('ETag') };
}
const errText = (r) => (r.data && r.data.error) || (r.status ? 'HTTP ' + r.status : 'no answer');

// ---- login / logout --------------------------------------------------------------------------
function showLogin(msg) {
  stopPoll();
  show($('app-view'), false); show($('who'), false); show($('login-view'), true);
  const m = $('login-msg');
  m.textContent = msg || ''; show(m, !!msg); m.className = 'msg' + (msg ? ' info' : '');
  $('login-pass').value = '';
  $((msg && $('login-user').value) ? 'login-pass' : 'login-user').focus();
}
function lost() {
  showLogin(dirty() ? 'Your session has ended. Sign in again: your unsaved changes are kept.'
    : 'Your session has ended. Sign in again.');
}
let lockTimer = 0;
async function login(e) {
  e.preventDefault();
  const user = $('login-user').value.trim(), pw = $('login-pass').value, m = $('login-msg');
  if (!user || !pw) { m.className = 'msg err'; m.textContent = 'Enter the user name and the password.'; show(m, true); return; }
  $('login-btn').disabled = true;
  const r = await api('POST', 'login', { user, password: pw });
  $('login-pass').value = '';
  $('login-btn').disabled = false;
  if (r.status === 200) { S.csrf = r.data.csrf_token; S.user = r.data.user || user; return enter(); }
  m.className = 'msg err'; show(m, true);
  if (r.status === 429) {
    let left = +r.data.retry_after_s || 60;
    clearInterval(lockTimer);
    const tick = () => {
      m.textContent = 'Too many failed sign-ins: locked, try again in ' + left + ' s.';
      $('login-btn').disabled = left > 0;
      if (left-- <= 0) { clearInterval(lockTimer); m.textContent = 'You may try again now.'; }
    };
    tick(); lockTimer = setInterval(tick, 1000);
  } else if (r.status === 401) m.textContent = 'Wrong user name or password.';
  else m.textContent = 'Sign-in refused: ' + errText(r);
  $('login-pass').focus();
}
async function logout() {
  if (dirty() && !confirm('You have unsaved changes. Log out and lose them?')) return;
  await api('POST', 'logout', {});
  S.cfg = null; S.ev = {}; S.dl = {}; S.csrf = ''; S.probs = {};
  showLogin('You have logged out.');
}

// ---- loading ---------------------------------------------------------------------------------
async function enter() {
  show($('login-view'), false); show($('app-view'), true); show($('who'), true);
  $('who-name').textContent = S.user;
  if (!S.events.length) {
    const [e, v] = await Promise.all([api('GET', 'events'), api('GET', 'variables')]);
    if (e.status !== 200 || v.status !== 200) return banner('err', 'Cannot load the event list: ' + errText(e.status !== 200 ? e : v));
    S.events = e.data; S.vars = v.data;
  }
  if (!await loadConfig()) return;
  build();
  poll();
}
async function loadConfig() {
  const r = await api('GET', 'config');
  if (r.status !== 200) { banner('err', 'Cannot load the configuration: ' + errText(r)); return false; }
  S.cfg = r.data; S.etag = r.etag || '';
  // Keep only the edits that still differ from what is stored now.
  for (const k in S.ev) for (const f in S.ev[k]) if (FIELDS.includes(f) && same(f, S.ev[k][f], srv(k)[f])) delete S.ev[k][f];
  for (const f in S.dl) if (String(S.dl[f]) === String(dlSrv(f))) delete S.dl[f];
  return true;
}
const srv = (k) => (S.cfg.events && S.cfg.events[k]) || { url: '', enabled: true, method: 'GET', body: '', content_type: 'form', username: '', password_set: false };
const same = (f, a, b) => (a == null ? '' : a) === (b == null ? '' : b);
const val = (k, f) => (S.ev[k] && f in S.ev[k]) ? S.ev[k][f] : srv(k)[f];
const isOn = (k) => !!val(k, 'url') && val(k, 'enabled') !== false;
function setEv(k, f, v) {
  const e = S.ev[k] || (S.ev[k] = {});
  if (v === undefined || (FIELDS.includes(f) && same(f, v, srv(k)[f]))) delete e[f]; else e[f] = v;
  if (!Object.keys(e).length) delete S.ev[k];
  delete S.probs['events.' + k + '.' + (f === 'clearpw' ? 'password' : f)];
  refreshRow(k); saveState();
}
const dirty = () => Object.keys(S.ev).length + Object.keys(S.dl).length > 0;
const dlSrv = (f) => S.cfg.delivery && S.cfg.delivery[f] != null ? S.cfg.delivery[f] : '';

// What one event looks like in a request body: its stored form with the edits applied.
function evObj(k, full) {
  const o = {};
  for (const f of FIELDS) if (val(k, f) !== undefined) o[f] = val(k, f);
  const e = S.ev[k] || {};
  if (e.password) o.password = e.password;
  else if (e.clearpw) o.password = '';
  if (!full) delete o.enabled;
  return o;
}
function putBody() {
  const out = JSON.parse(JSON.stringify(S.cfg));
  delete out.delivery_defaults;
  out.events = {};
  for (const ev of S.events) out.events[ev.key] = evObj(ev.key, true);
  const d = out.delivery || (out.delivery = {});
  for (const f in S.dl) {
    const v = String(S.dl[f]).trim();
    if (v === '') delete d[f];
    else d[f] = /^\d+$/.test(v) && typeof (S.cfg.delivery_defaults || {})[f] !== 'string' ? +v : v;
  }
  return out;
}

// ---- building the page -----------------------------------------------------------------------
function build() {
  const ul = $('events');
  ul.textContent = ''; S.rows = {}; S.open = null;
  for (const ev of S.events) ul.append(row(ev));
  buildDelivery();
  for (const ev of S.events) refreshRow(ev.key);
  saveState();
}
function row(ev) {
  const k = ev.key, r = {};
  const aliases = (ev.aliases || []).join(', ');
  r.url = h('span.url.mono');
  r.st = h('span.last');
  r.cnt = h('span.counts');
  r.mark = h('span.badge.warn', { text: 'unsaved', hidden: true });
  r.err = h('span.badge.bad', { text: 'refused', hidden: true });
  r.toggle = h('button.row-toggle', { type: 'button', 'aria-expanded': 'false', 'aria-controls': 'ed-' + k, onclick: () => toggle(k) },
    h('span.chev', { 'aria-hidden': 'true' }),
    h('span.name', {}, h('span.label', { text: ev.label }), r.mark, r.err,
      h('span.key.mono', { text: k, title: aliases ? 'Also accepted as: ' + aliases : null })),
    h('span.what', {}, r.url, h('span.result', {}, r.st, r.cnt)));
  r.sw = h('button.switch', { type: 'button', role: 'switch', 'aria-checked': 'false', 'aria-label': ev.label + ' on', onclick: () => flip(k) },
    h('span.knob', { 'aria-hidden': 'true' }), h('span.sw-text', { 'aria-hidden': 'true' }));
  r.test = h('button.btn.small', { type: 'button', onclick: () => sendTest(k), 'aria-label': 'Send test: ' + ev.label, text: 'Send test' });
  r.out = h('div.test-out', { role: 'status', hidden: true });
  r.ed = h('form.editor', { id: 'ed-' + k, hidden: true, novalidate: true, onsubmit: (e) => e.preventDefault() });
  r.li = h('li.ev', { id: 'ev-' + k }, h('div.row-head', {}, r.toggle, h('div.row-ctl', {}, r.test, r.sw)), r.out, r.ed);
  S.rows[k] = r;
  return r.li;
}
function refreshRow(k) {
  const r = S.rows[k];
  if (!r) return;
  const url = val(k, 'url') || '', on = isOn(k), e = S.ev[k];
  r.url.textContent = url ? (val(k, 'method') === 'POST' ? 'POST ' : '') + url : 'No URL set';
  r.url.classList.toggle('none', !url);
  r.sw.setAttribute('aria-checked', on ? 'true' : 'false');
  r.sw.lastChild.textContent = on ? 'ON' : 'OFF';
  r.li.classList.toggle('on', on);
  r.li.classList.toggle('dirty', !!e);
  show(r.mark, !!e);
  const refused = Object.keys(S.probs).some((p) => p.startsWith('events.' + k + '.'));
  show(r.err, refused);
  r.test.classList.toggle('gone', !url);
  refreshStatus(k);
  summary();
}
function refreshStatus(k) {
  const r = S.rows[k], s = S.status[k];
  let text = val(k, 'url') ? 'never sent' : '', cls = 'idle';
  if (s && s.last) {
    const l = s.last, code = l.status ? 'HTTP ' + l.status : (RESULT[l.result] || l.result);
    const when = l.ago_s != null ? ' ' + ago(l.ago_s) + ' ago' : '';
    if (l.status >= 200 && l.status < 300) { text = 'delivered' + when + ': ' + l.status; cls = 'ok'; }
    else if (l.retry_in_s != null) { text = 'failing: ' + code + ', retry in ' + ago(l.retry_in_s) + (l.attempt ? ' (attempt ' + l.attempt + ')' : ''); cls = 'bad'; }
    else { text = 'failed' + when + ': ' + code + (l.location ? ' → ' + l.location : ''); cls = 'bad'; }
  } else if (s && s.counters && s.counters.queued) { text = 'sending…'; }
  r.st.textContent = text; r.st.className = 'last ' + cls;
  const c = s && s.counters, parts = [];
  if (c) for (const n of ['delivered', 'retried', 'failed', 'dropped', 'queued']) if (c[n]) parts.push(c[n] + ' ' + n);
  r.cnt.textContent = parts.length ? ' · ' + parts.join(' · ') : '';
}
function summary() {
  const n = S.events.filter((ev) => isOn(ev.key)).length;
  $('summary').textContent = n + ' of ' + S.events.length + ' events on';
  $('ev-count').textContent = S.events.length + ' events, in the order of the guide';
}

// ---- one event's editor ----------------------------------------------------------------------
function toggle(k, focusUrl) {
  if (S.open && S.open !== k) close(S.open);
  if (S.open === k && !focusUrl) return close(k, true);
  const r = S.rows[k];
  if (S.open !== k) { S.open = k; r.ed.textContent = ''; r.ed.append(...editor(k)); show(r.ed, true); }
  r.toggle.setAttribute('aria-expanded', 'true'); r.li.classList.add('open');
  check(k, 0);
  if (focusUrl) r.ed.querySelector('.f-url').focus();
}
function close(k, focus) {
  const r = S.rows[k];
  show(r.ed, false); r.ed.textContent = ''; r.li.classList.remove('open');
  r.toggle.setAttribute('aria-expanded', 'false');
  S.open = null;
  if (focus) r.toggle.focus();
}
function field(k, id, label, input, hint) {
  const probs = h('div.probs', { id: id + '-p', 'aria-live': 'polite' });
  input.id = id;
  input.setAttribute('aria-describedby', (hint ? id + '-h ' : '') + id + '-p');
  return h('div.field', {}, h('label', { for: id, text: label }), input,
    hint ? h('p.hint', { id: id + '-h' }, hint) : null, probs);
}
function editor(k) {
  const ev = S.events.find((x) => x.key === k), e = S.ev[k] || {}, s = srv(k);
  const id = 'f-' + k + '-';
  let target = null; // the template field the palette inserts into
  const tpl = (f, el) => {
    el.addEventListener('focus', () => { target = el; });
    el.addEventListener('input', () => { setEv(k, f, el.value); check(k); });
    return el;
  };
  const url = tpl('url', h('input.mono.f-url', { type: 'text', inputmode: 'url', spellcheck: 'false', autocomplete: 'off', autocapitalize: 'off', value: val(k, 'url') || '', placeholder: '192.168.5.10:8080/event?from=$remote' }));
  const body = tpl('body', h('textarea.mono.f-body', { rows: '3', spellcheck: 'false', value: val(k, 'body') || '' }));
  const ctype = h('select', { onchange: () => { setEv(k, 'content_type', ctype.value); check(k); } },
    [['form', 'Form (application/x-www-form-urlencoded)'], ['json', 'JSON (application/json)'], ['text', 'Text (text/plain)']]
      .map(([v, t]) => h('option', { value: v, text: t })));
  ctype.value = val(k, 'content_type') || 'form';
  const post = h('div.post', { hidden: val(k, 'method') !== 'POST' },
    field(k, id + 'body', 'Body', body, 'Values are encoded for the content type.'),
    field(k, id + 'content_type', 'Content type', ctype));
  const method = h('fieldset.seg', {}, h('legend', { text: 'Method' }),
    ['GET', 'POST'].map((m) => h('label', {}, h('input', { type: 'radio', name: id + 'm', value: m, checked: (val(k, 'method') || 'GET') === m,
      onchange: () => { setEv(k, 'method', m); show(post, m === 'POST'); check(k); } }), h('span', { text: m }))));
  const pal = h('div.palette', { role: 'group', 'aria-label': 'Variables' },
    S.vars.map((v) => h('button.var', { type: 'button', title: v.aliases && v.aliases.length ? 'Also: $' + v.aliases.join(', $') : null,
      onclick: () => insertVar(target || url, v.name, k) },
    h('code', { text: '$' + v.name }), h('span', { text: v.description || '' }))));
  const user = h('input', { type: 'text', autocomplete: 'off', autocapitalize: 'off', spellcheck: 'false', value: val(k, 'username') || '',
    oninput: () => { setEv(k, 'username', user.value); check(k); } });
  const pwState = h('span.badge');
  const pw = h('input.f-pw', { type: 'password', autocomplete: 'new-password',
    oninput: () => { setEv(k, 'password', pw.value || undefined); pwUi(); check(k); } });
  const rm = h('button.btn.small', { type: 'button', onclick: () => {
    const clear = !(S.ev[k] || {}).clearpw;
    pw.value = '';
    setEv(k, 'password', undefined); setEv(k, 'clearpw', clear || undefined);
    pwUi(); check(k);
  } });
  function pwUi() {
    const c = S.ev[k] || {};
    const set = s.password_set, clear = !!c.clearpw;
    pwState.textContent = clear ? 'will be removed' : c.password ? 'new password' : set ? 'set' : 'not set';
    pwState.className = 'badge ' + (clear ? 'bad' : c.password ? 'warn' : set ? 'ok' : '');
    pw.placeholder = clear ? 'removed on save' : set ? 'leave blank to keep' : 'none';
    pw.disabled = clear;
    rm.textContent = clear ? 'Keep password' : 'Remove password';
    show(rm, set || clear);
  }
  pwUi();
  const pwField = field(k, id + 'password', 'Password', pw);
  pwField.querySelector('label').append(' ', pwState);
  pwField.insertBefore(h('div.pw-row', {}, pw, rm), pwField.querySelector('.probs'));
  pwField.append(h('p.hint', { text: 'Write-only: a stored password is never shown. Leave blank to keep it.' }));
  const aliases = (ev.aliases || []).join(', ');
  return [
    h('p.when', {}, WHEN[k] || '', aliases ? h('span.small.muted', { text: ' Also accepted as: ' + aliases + '.' }) : null),
    field(k, id + 'url', 'URL', url, 'The scheme may be left out (http:// is assumed). Credentials may be given as user:password@host.'),
    h('details.pal-wrap', { open: matchMedia('(min-width: 721px)').matches }, h('summary.pal-title', { text: 'Insert a variable at the cursor' }), pal),
    method, post,
    h('div.cols', {}, field(k, id + 'username', 'User name (HTTP Basic)', user), pwField),
    h('div.preview', {}, h('p.pv-title', { text: 'Preview with sample values' }), h('pre.mono.pv', { id: 'pv-' + k, 'aria-live': 'polite' })),
    h('div.ed-actions', {}, h('button.btn', { type: 'button', text: 'Send test', onclick: () => sendTest(k) }),
      h('button.btn.ghost', { type: 'button', text: 'Close', onclick: () => close(k, true) })),
  ];
}
function insertVar(el, name, k) {
  const a = el.selectionStart ?? el.value.length, b = el.selectionEnd ?? a;
  const next = el.value.charAt(b);
  const ins = /[A-Za-z0-9_]/.test(next) ? '${' + name + '}' : '$' + name;
  el.focus();
  el.setRangeText(ins, a, b, 'end');
  el.dispatchEvent(new Event('input'));
}

// As-you-type check: the server's preview runs the same rules as `event-notify check`.
let checkSeq = 0, checkTimer = 0;
function check(k, delay = 300) {
  clearTimeout(checkTimer);
  checkTimer = setTimeout(async () => {
    const seq = ++checkSeq;
    const r = await api('POST', 'events/' + k + '/preview', evObj(k));
    if (seq !== checkSeq || S.open !== k) return;
    const pv = $('pv-' + k);
    if (r.status !== 200) { pv.textContent = 'Preview unavailable: ' + errText(r); return; }
    const live = {};
    for (const p of r.data.problems || []) (live[p.field] = live[p.field] || []).push(p);
    paintProbs(k, live);
    const q = r.data.request;
    pv.classList.toggle('none', !q);
    pv.textContent = !q ? (val(k, 'url') ? 'No request can be made until the problems above are fixed.' : 'Set a URL to see the request.')
      : [q.line, ...(q.headers || []).map(([a, b]) => a + ': ' + b), ...(q.body ? ['', q.body] : [])].join('\n');
  }, delay);
}
// Problems under each field of the open editor: the live check's, else the last save's.
function paintProbs(k, live) {
  const r = S.rows[k];
  for (const box of r.ed.querySelectorAll('.probs')) {
    const f = box.id.slice(('f-' + k + '-').length, -2), path = 'events.' + k + '.' + f;
    const list = (live && live[path]) || S.probs[path] || [];
    const input = $(box.id.slice(0, -2));
    box.textContent = '';
    input.setAttribute('aria-invalid', list.some((p) => !p.warning && p.level !== 'warning') ? 'true' : 'false');
    for (const p of list) box.append(problem(p, input));
  }
}
function problem(p, input) {
  const warn = p.warning || p.level === 'warning' || /^warning/.test(p.text || '');
  const el = h('div.prob' + (warn ? '.warn' : ''), {}, h('span.prob-msg', { text: (p.column ? 'Column ' + p.column + ': ' : '') + p.message }));
  if (p.column && input && 'value' in input) {
    const v = input.value, c = p.column - 1;
    const at = v.slice(c, c + 1) || ' ';
    el.append(h('code.where.mono', {}, v.slice(Math.max(0, c - 40), c), h('mark', { text: at }), v.slice(c + 1, c + 41)),
      h('button.link', { type: 'button', text: 'Go to column ' + p.column,
        onclick: () => { input.focus(); input.setSelectionRange(c, Math.min(v.length, c + 1)); } }));
  }
  return el;
}

// ---- switch, test send -----------------------------------------------------------------------
function flip(k) {
  if (isOn(k)) return setEv(k, 'enabled', false);
  setEv(k, 'enabled', true);
  if (!val(k, 'url')) {
    toggle(k, true);
    const p = $('f-' + k + '-url-p');
    if (p) { p.textContent = ''; p.append(h('div.prob.info', { text: 'Enter the URL to send when this event happens.' })); }
  }
}
async function sendTest(k) {
  const r = S.rows[k];
  r.test.disabled = true;
  show(r.out, true); r.out.className = 'test-out busy'; r.out.textContent = 'Sending a test request…';
  const body = S.ev[k] ? { event: evObj(k, true) } : {};
  const t = await api('POST', 'events/' + k + '/test', body);
  r.test.disabled = false;
  const d = t.data;
  r.out.textContent = '';
  if (t.status !== 200) {
    r.out.className = 'test-out bad';
    r.out.append(h('b', { text: 'Test not sent: ' }), errText(t));
    return;
  }
  const good = d.ok && d.status >= 200 && d.status < 300;
  r.out.className = 'test-out ' + (good ? 'ok' : 'bad');
  r.out.append(...[h('code.mono', { text: d.request_line || '' }), h('span.arrow', { text: ' → ' }),
    h('b', { text: d.status ? 'HTTP ' + d.status : 'failed: ' + (d.error || 'no answer') }),
    h('span.muted', { text: d.elapsed_ms != null ? ' in ' + d.elapsed_ms + ' ms' : '' }),
    d.status && d.error ? h('span', { text: ' (' + d.error + ')' }) : null,
    h('button.link.dismiss', { type: 'button', 'aria-label': 'Dismiss the test result', text: '×', onclick: () => show(r.out, false) })].filter(Boolean));
}

// ---- delivery settings -----------------------------------------------------------------------
function buildDelivery() {
  const g = $('delivery'), cur = S.cfg.delivery || {}, def = S.cfg.delivery_defaults || {};
  g.textContent = '';
  const names = [...Object.keys(DL).filter((f) => f in cur || f in def), ...Object.keys(cur).filter((f) => !(f in DL))];
  for (const f of names) {
    const [label, unit, what] = DL[f] || [f.replace(/_/g, ' '), '', ''];
    const d = def[f], id = 'dl-' + f;
    const inp = h('input' + (typeof d === 'number' ? '.num' : ''), { id, type: 'text', inputmode: typeof d === 'number' ? 'numeric' : null, autocomplete: 'off',
      spellcheck: 'false', value: f in S.dl ? S.dl[f] : dlSrv(f), placeholder: d != null && d !== '' ? String(d) : '',
      'aria-describedby': id + '-h ' + id + '-p' });
    const note = h('span');
    const upd = () => {
      const v = inp.value.trim();
      note.textContent = d == null || d === '' ? '' : (v === '' || String(d) === v ? 'Default.' : 'Default: ' + d + (unit ? ' ' + unit : '') + '.');
    };
    inp.addEventListener('input', () => {
      if (inp.value.trim() === String(dlSrv(f))) delete S.dl[f]; else S.dl[f] = inp.value;
      delete S.probs['delivery.' + f];
      upd(); paintDl(); saveState();
    });
    upd();
    g.append(h('div.field', {}, h('label', { for: id, text: label }),
      h('div.unit-wrap', {}, inp, unit ? h('span.unit', { text: unit }) : null),
      h('p.hint', { id: id + '-h' }, what + ' ', note), h('div.probs', { id: id + '-p' })));
  }
  paintDl();
}
function paintDl() {
  for (const box of $('delivery').querySelectorAll('.probs')) {
    const f = box.id.slice(3, -2), list = S.probs['delivery.' + f] || [];
    box.textContent = '';
    for (const p of list) box.append(problem(p));
    $('dl-' + f).setAttribute('aria-invalid', list.length ? 'true' : 'false');
    $('dl-' + f).classList.toggle('changed', f in S.dl);
  }
}

// ---- save ------------------------------------------------------------------------------------
function saveState(text, cls) {
  const n = Object.keys(S.ev).length + Object.keys(S.dl).length;
  const el = $('save-state');
  $('save').disabled = S.busy || !n; $('discard').disabled = S.busy || !n;
  $('savebar').classList.toggle('dirty', n > 0);
  if (text) { el.textContent = text; el.className = 'save-state ' + (cls || ''); return; }
  if (n) { el.textContent = plural(n, 'unsaved change') + (n > 1 ? '' : ''); el.className = 'save-state dirty'; }
  else { el.textContent = S.savedAt ? 'Saved at ' + S.savedAt + ': in force.' : 'No unsaved changes.'; el.className = 'save-state' + (S.savedAt ? ' ok' : ''); }
}
function banner(cls, ...kids) {
  const b = $('save-msg');
  b.textContent = '';
  if (!kids.length) return show(b, false);
  b.className = 'msg banner ' + cls; b.append(...kids); show(b, true);
}
async function save() {
  if (S.busy || !dirty()) return;
  S.busy = true; saveState('Saving…', 'busy'); banner();
  const r = await api('PUT', 'config', putBody(), { 'If-Match': S.etag });
  S.busy = false;
  if (r.status === 200) {
    S.ev = {}; S.dl = {}; S.probs = {};
    S.savedAt = new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    await loadConfig();
    const open = S.open; build(); if (open) toggle(open);
    if (r.data.in_force === false) return saveState('Saved, but the phone has not taken it yet.', 'warn');
    saveState(); pollNow();
    return;
  }
  if (r.status === 422) {
    S.probs = {};
    const all = r.data.problems || [];
    for (const p of all) (S.probs[p.field || ''] = S.probs[p.field || ''] || []).push(p);
    for (const ev of S.events) refreshRow(ev.key);
    if (S.open) paintProbs(S.open);
    paintDl();
    banner('err', h('p', {}, h('b', { text: 'Not saved: nothing was changed.' }), ' ' + (all.length ? plural(all.length, 'problem') + ' to fix:' : errText(r))),
      h('ul', {}, all.map((p) => h('li', {}, h('button.link', { type: 'button', text: where(p.field), onclick: () => goTo(p.field) }), ': ' + (p.column ? 'column ' + p.column + ': ' : '') + p.message))));
  } else if (r.status === 412 || r.status === 428) {
    banner('err', h('p', {}, h('b', { text: 'Not saved: someone else changed the configuration since you loaded it.' }),
      ' Your changes are still here. Load the current configuration (your changes stay on top of it), review, and save again.'),
    h('button.btn.small', { type: 'button', text: 'Load the current configuration', onclick: async () => { if (await loadConfig()) { const o = S.open; build(); if (o) toggle(o); banner(); } } }));
  } else banner('err', h('p', {}, h('b', { text: 'Not saved: ' }), errText(r)));
  saveState(r.status === 422 ? 'Not saved: fix the fields marked below.' : 'Not saved.', 'bad');
  setTimeout(() => saveState(), 8000);
}
function where(field) {
  const m = /^events\.([^.]+)\.?(.*)$/.exec(field || '');
  if (m) { const ev = S.events.find((e) => e.key === m[1]); return (ev ? ev.label : m[1]) + (m[2] ? ' · ' + m[2].replace('_', ' ') : ''); }
  const d = /^delivery\.(.+)$/.exec(field || '');
  if (d) return 'Delivery · ' + (DL[d[1]] ? DL[d[1]][0] : d[1]);
  return field || 'Configuration';
}
function goTo(field) {
  const m = /^events\.([^.]+)\.?(.*)$/.exec(field || '');
  if (m && S.rows[m[1]]) {
    if (S.open !== m[1]) toggle(m[1]);
    const el = $('f-' + m[1] + '-' + (m[2] || 'url'));
    if (el) el.focus();
    return;
  }
  const d = /^delivery\.(.+)$/.exec(field || '');
  if (d && $('dl-' + d[1])) $('dl-' + d[1]).focus();
}
async function discard() {
  if (!confirm('Discard all unsaved changes?')) return;
  S.ev = {}; S.dl = {}; S.probs = {}; banner();
  const open = S.open; build(); if (open) toggle(open);
}

// ---- status polling --------------------------------------------------------------------------
function stopPoll() { clearTimeout(S.timer); S.timer = 0; }
function pollNow() { stopPoll(); poll(); }
async function poll() {
  stopPoll();
  if (!document.hidden) {
    const r = await api('GET', 'status');
    if (r.status === 200) {
      S.status = {};
      for (const e of r.data.events || []) S.status[e.key] = e;
      for (const ev of S.events) if (S.rows[ev.key]) refreshStatus(ev.key);
      const c = r.data.counters || {};
      $('foot').textContent = 'event-notify ' + (r.data.version || '') + ' · up ' + ago(r.data.uptime_s || 0) +
        ' · ' + ['delivered', 'retried', 'failed', 'dropped', 'queued'].map((n) => (c[n] || 0) + ' ' + n).join(' · ');
    }
    if (r.status === 401) return;
  }
  if (S.cfg) S.timer = setTimeout(poll, 5000);
}

// ---- start -----------------------------------------------------------------------------------
addEventListener('DOMContentLoaded', async () => {
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  $('save').addEventListener('click', save);
  $('discard').addEventListener('click', discard);
  document.addEventListener('visibilitychange', () => { if (!document.hidden && S.cfg) pollNow(); });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && S.open && S.rows[S.open].ed.contains(document.activeElement)) close(S.open, true);
    if ((e.ctrlKey || e.metaKey) && e.key === 's' && S.cfg) { e.preventDefault(); save(); }
  });
  addEventListener('beforeunload', (e) => { if (dirty()) { e.preventDefault(); e.returnValue = ''; } });
  const r = await api('GET', 'session');
  if (r.status === 200) { S.csrf = r.data.csrf_token; S.user = r.data.user; enter(); } else showLogin();
});
})();
