// The page Maintenance › Event Notify, in a real browser against the real daemon.
//
// Starts `event-notify listen` (the receiver) and `event-notify run --admin` on loopback with a
// credentials file made by `event-notify passwd`, drives Debian's headless Chromium through
// playwright-core (no browser download: executablePath /usr/bin/chromium) and checks what an admin
// does: log in, refused password, build a URL from the palette, save ("in force"), an emitted call
// reaching the receiver exactly, Send test, an invalid template refused with its column and nothing
// saved, write-only passwords, the unsaved-change mark, a stale second save, logout.
// Screenshots (desktop 1280 px and phone 360 px) go to target/page-shots/.
//
// Run: make test-page (builds the daemon, installs chromium and playwright-core first).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TARGET = process.env.CARGO_TARGET_DIR ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR) : path.join(ROOT, 'target');
const BIN = process.env.EVENT_NOTIFY_BIN || path.join(TARGET, 'debug/event-notify');
const SHOTS = path.join(TARGET, 'page-shots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT = 20_000; // generous: two shared cores, parallel compilations

// The guide's twenty events, in its order (PRODUCT.md §2).
const KEYS = ('incoming_call outgoing_call establish_call terminate_call off_hook on_hook missed_call dnd_on dnd_off ' +
  'call_forwarding_on call_forwarding_off hold_call resume_call syslog_on syslog_off booting_completed ' +
  'blind_transferring attended_transferring registration sign_off').split(' ');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'en-page-'));
const ADMIN_PW = 'adm-' + crypto.randomBytes(6).toString('hex');
const STORED_PW = 'stored-' + crypto.randomBytes(6).toString('hex'); // in the config from the start
const NEW_PW = 'typed-' + crypto.randomBytes(6).toString('hex'); // set through the page
const URL_PW = 'inurl-' + crypto.randomBytes(6).toString('hex'); // user:password@ in a stored URL
const SIGN = 'sign-' + crypto.randomBytes(6).toString('hex'); // an event's signing secret, stored
const DL_SIGN = 'dlsign-' + crypto.randomBytes(6).toString('hex'); // delivery.signing_secret, stored
const NEW_SIGN = 'newsign-' + crypto.randomBytes(6).toString('hex'); // set through the page
const HDR_KEY = 'hdrkey-' + crypto.randomBytes(6).toString('hex'); // a credential header's value
const SECRETS = [ADMIN_PW, STORED_PW, NEW_PW, URL_PW, SIGN, DL_SIGN, NEW_SIGN, HDR_KEY];
const children = [];
let recv, daemon, base, rport, ctx, page;
const apiBodies = []; // every API response the browser got: [url, text]
const pageErrors = []; // uncaught script errors in the page

function start(args, opts = {}) {
  const c = spawn(BIN, args, { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
  c.out = ''; c.err = '';
  c.stdout.on('data', (d) => { c.out += d; });
  c.stderr.on('data', (d) => { c.err += d; });
  children.push(c);
  return c;
}
async function until(what, fn, ms = WAIT) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const cfgPath = path.join(tmp, 'config.json');
const readCfg = () => fs.readFileSync(cfgPath, 'utf8');
const row = (k) => page.locator('#ev-' + k);
// The steps are one admin's session, in order: once one fails, the later ones are skipped.
let broken = '';
const step = (name, fn) => test(name, async (t) => {
  if (broken) return t.skip('an earlier step failed: ' + broken);
  try { await fn(t); } catch (e) { broken = name; throw e; }
});

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  recv = start(['listen', '--bind', '127.0.0.1:0', '--status', '202']);
  rport = +(await until('the receiver', () => (/listening on 127\.0\.0\.1:(\d+)/.exec(recv.err) || [])[1]));
  execFileSync(BIN, ['passwd', '--file', path.join(tmp, 'cred'), '--user', 'admin'], { input: ADMIN_PW + '\n' });
  fs.writeFileSync(cfgPath, JSON.stringify({ events: {
    terminate_call: { url: `http://127.0.0.1:${rport}/end?id=$call_id`, method: 'POST', content_type: 'form',
      body: 't=$duration', username: 'crm', password: STORED_PW, signing_secret: SIGN,
      headers: { 'X-Api-Key': HDR_KEY, 'X-Site': 'lab-$mac' } },
    hold_call: `http://bob:${URL_PW}@127.0.0.1:${rport}/hold?id=$call_id` },
  delivery: { max_age_s: 900, signing_secret: DL_SIGN } }));
  daemon = start(['run', '--config', cfgPath, '--socket', path.join(tmp, 'sock'),
    '--admin', '127.0.0.1:0', '--admin-credentials', path.join(tmp, 'cred')], { env: { ...process.env, EVENT_NOTIFY_LOG: 'info' } });
  base = await until('the admin server', () => (/admin: serving (http:\/\/127\.0\.0\.1:\d+)\//.exec(daemon.err) || [])[1]);
  ctx = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath: CHROMIUM, headless: true, viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'] });
  ctx.on('response', async (r) => {
    if (!r.url().startsWith(base + '/api/')) return;
    try { apiBodies.push([r.url(), await r.text()]); } catch { /* a body already gone (204, navigation) */ }
  });
  ctx.setDefaultTimeout(WAIT);
  page = ctx.pages()[0] || await ctx.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

after(async () => {
  if (ctx) await ctx.close().catch(() => {});
  for (const c of children) c.kill('SIGKILL');
  if (process.exitCode) console.log('daemon log:\n' + (daemon && daemon.err) + '\nreceiver:\n' + (recv && recv.out));
  fs.rmSync(tmp, { recursive: true, force: true });
});

step('the page is served whole by the daemon, under 40 KiB, with a strict CSP and nothing from elsewhere', async () => {
  let total = 0;
  for (const p of ['/', '/app.css', '/app.js']) {
    const r = await fetch(base + p);
    assert.equal(r.status, 200, p);
    const t = await r.text();
    total += Buffer.byteLength(t);
    // Nothing fetched from elsewhere: no absolute URL in the HTML or CSS, no url()/@import, and the
    // script calls fetch() only with the API's relative paths.
    if (p !== '/app.js') assert.doesNotMatch(t, /:\/\/|url\(|@import/, p);
    else assert.deepEqual([...t.matchAll(/fetch\(([^,)]*)/g)].map((m) => m[1]), ["'/api/v1/' + path"]);
    if (p === '/') {
      const csp = r.headers.get('content-security-policy') || '';
      assert.match(csp, /default-src 'self'/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.doesNotMatch(t, /<script>|<style|\sstyle=|\son[a-z]+=/i, 'no inline script or style in the HTML');
    }
  }
  assert.ok(total < 40 * 1024, `page is ${total} bytes`);
});

step('login: a wrong password is refused plainly, the right one opens Event Notify (keyboard only)', async () => {
  await page.goto(base + '/');
  await page.locator('#login-user').waitFor();
  await page.screenshot({ path: path.join(SHOTS, 'desktop-login.png') });
  await page.fill('#login-user', 'admin');
  await page.fill('#login-pass', 'not-the-password');
  await page.press('#login-pass', 'Enter');
  await assert.doesNotReject(page.locator('#login-msg', { hasText: 'Wrong user name or password' }).waitFor());
  assert.equal(await page.isVisible('#app-view'), false);
  // Keyboard alone: focus is back on the password; type it and press Enter.
  assert.equal(await page.evaluate(() => document.activeElement.id), 'login-pass');
  await page.keyboard.type(ADMIN_PW);
  await page.keyboard.press('Enter');
  await page.locator('#ev-incoming_call').waitFor();
  assert.equal(await page.inputValue('#login-pass'), '', 'the password field is emptied');
});

step('the twenty events in the guide\'s order, with key, switch and last result', async () => {
  const ids = await page.locator('#events > li').evaluateAll((lis) => lis.map((li) => li.id.slice(3)));
  assert.deepEqual(ids, KEYS);
  assert.equal(await row('incoming_call').locator('.label').textContent(), 'Incoming Call');
  assert.equal(await row('incoming_call').locator('.key').textContent(), 'incoming_call');
  assert.match(await row('incoming_call').locator('.key').getAttribute('title'), /action_incoming_url/);
  assert.equal(await row('terminate_call').locator('.switch').getAttribute('aria-checked'), 'true');
  assert.equal(await row('incoming_call').locator('.switch').getAttribute('aria-checked'), 'false');
  assert.match(await row('terminate_call').locator('.last').textContent(), /never sent/);
  assert.match(await page.textContent('#summary'), /2 of 20 events on/);
  // Delivery settings show their defaults.
  const cfg = await (await page.request.get(base + '/api/v1/config')).json();
  assert.equal(await page.inputValue('#dl-attempts'), String(cfg.delivery.attempts));
  assert.equal(cfg.delivery.attempts, cfg.delivery_defaults.attempts);
  assert.match(await page.textContent('#dl-attempts-h'), /Default/);
});

step('keyboard alone: a row opens with Enter, Tab reaches its fields, Escape closes it; focus is visible', async () => {
  const active = () => page.evaluate(() => {
    const e = document.activeElement, cs = getComputedStyle(e);
    return { id: e.id, cls: e.className, ring: cs.outlineStyle !== 'none' || cs.boxShadow !== 'none' };
  });
  await page.focus('#ev-incoming_call .row-toggle');
  await page.keyboard.press('Enter');
  assert.equal(await row('incoming_call').locator('.row-toggle').getAttribute('aria-expanded'), 'true');
  await page.keyboard.press('Tab'); // Send test is not offered without a URL
  assert.equal((await active()).cls, 'switch');
  assert.ok((await active()).ring, 'the focused switch shows a ring');
  await page.keyboard.press('Tab');
  assert.equal((await active()).id, 'f-incoming_call-url');
  assert.ok((await active()).ring, 'the focused URL field shows a ring');
  await page.keyboard.press('Escape');
  assert.equal(await page.isVisible('#ed-incoming_call'), false);
  assert.equal((await active()).cls, 'row-toggle');
  assert.ok((await active()).ring, 'the focused row shows a ring');
});

step('Incoming Call ON with a URL built from the palette; Save says "in force"', async () => {
  await row('incoming_call').locator('.switch').click();
  const url = page.locator('#f-incoming_call-url');
  await url.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'f-incoming_call-url', 'switching ON an event without URL focuses its URL');
  await page.keyboard.type(`127.0.0.1:${rport}/in?from=`);
  const pal = (v) => row('incoming_call').locator('.palette .var', { has: page.locator('code', { hasText: new RegExp('^\\$' + v + '$') }) });
  await pal('remote').click();
  await url.press('End');
  await page.keyboard.type('&name=');
  await pal('display_remote').click();
  await page.keyboard.type('&id=');
  await pal('call_id').click();
  assert.equal(await url.inputValue(), `127.0.0.1:${rport}/in?from=$remote&name=$display_remote&id=$call_id`);
  // Unsaved changes are marked, on the row and in the save bar.
  assert.equal(await row('incoming_call').locator('.badge.warn', { hasText: 'unsaved' }).isVisible(), true);
  assert.match(await page.textContent('#save-state'), /1 unsaved change/);
  // The live preview shows the request with sample values, percent-encoded.
  await until('the preview', async () => /^GET http:\/\/127\.0\.0\.1:\d+\/in\?from=/.test(await page.textContent('#pv-incoming_call')));
  const before = readCfg();
  await page.click('#save');
  await page.locator('#save-state', { hasText: 'in force' }).waitFor({ timeout: WAIT });
  assert.notEqual(readCfg(), before);
  const saved = JSON.parse(readCfg());
  const ev = saved.events.incoming_call;
  assert.equal(typeof ev === 'string' ? ev : ev.url, `127.0.0.1:${rport}/in?from=$remote&name=$display_remote&id=$call_id`);
  assert.equal(await row('incoming_call').locator('.switch').getAttribute('aria-checked'), 'true');
  assert.equal(await row('incoming_call').locator('.badge.warn').isVisible(), false, 'no unsaved mark after save');
});

step('an emitted call reaches the receiver exactly; the row shows the delivery', async () => {
  const n = recv.out.length;
  execFileSync(BIN, ['emit', 'incoming_call', 'call_id=a84b4c76', 'remote=1002', 'display_remote=Bob & Alice #2', '--socket', path.join(tmp, 'sock')]);
  const got = await until('the notification', () => recv.out.slice(n).includes('\n') && recv.out.slice(n));
  assert.equal(got.split('\n')[0], 'GET /in?from=1002&name=Bob%20%26%20Alice%20%232&id=a84b4c76');
  await row('incoming_call').locator('.last.ok', { hasText: /delivered .*202/ }).waitFor({ timeout: WAIT });
});

step('Send test shows the request line and the receiver\'s answer without leaving the page', async () => {
  const n = recv.out.length;
  await row('incoming_call').locator('.row-ctl .btn').click();
  const out = row('incoming_call').locator('.test-out');
  await out.locator('b', { hasText: 'HTTP 202' }).waitFor({ timeout: WAIT });
  assert.match(await out.textContent(), new RegExp(`GET http://127\\.0\\.0\\.1:${rport}/in\\?from=`));
  assert.match(await out.textContent(), /in \d+ ms/);
  await until('the test request at the receiver', () => /^GET \/in\?from=/m.test(recv.out.slice(n)));
  assert.equal(page.url(), base + '/');
});

step('an invalid template shows its error with the column marked, and nothing is saved', async () => {
  const url = page.locator('#f-incoming_call-url');
  if (!await url.isVisible()) await row('incoming_call').locator('.row-toggle').click();
  const bad = `127.0.0.1:${rport}/in?from=\${remote&x=1`;
  await url.fill(bad);
  const col = bad.indexOf('${') + 1;
  const prob = row('incoming_call').locator('#f-incoming_call-url-p .prob').first();
  await prob.waitFor({ timeout: WAIT });
  assert.match(await prob.textContent(), new RegExp('Column ' + col + ':'));
  assert.equal(await prob.locator('mark').textContent(), '$');
  assert.equal(await url.getAttribute('aria-invalid'), 'true');
  const before = readCfg();
  const etag = (await page.request.get(base + '/api/v1/config')).headers().etag;
  await page.click('#save');
  await page.locator('#save-msg', { hasText: 'Not saved' }).waitFor({ timeout: WAIT });
  assert.match(await page.textContent('#save-msg'), new RegExp('column ' + col));
  assert.equal(readCfg(), before, 'the config file is unchanged');
  assert.equal((await page.request.get(base + '/api/v1/config')).headers().etag, etag);
  assert.equal(await url.inputValue(), bad, 'what the admin typed is kept');
  await page.screenshot({ path: path.join(SHOTS, 'desktop-invalid.png') });
  // "Go to column" puts the cursor on the problem.
  await prob.locator('button').click();
  assert.equal(await url.evaluate((e) => e.selectionStart), col - 1);
  page.once('dialog', (d) => d.accept());
  await page.click('#discard');
  await until('discard', async () => (await url.inputValue()) !== bad);
});

step('a password is write-only: never in the DOM, the page source or any API response', async () => {
  await row('terminate_call').locator('.row-toggle').click();
  const pw = page.locator('#f-terminate_call-password');
  await pw.waitFor();
  assert.equal(await pw.inputValue(), '');
  assert.match(await row('terminate_call').locator('label[for="f-terminate_call-password"] .badge').textContent(), /^set$/);
  assert.equal(await pw.getAttribute('placeholder'), 'leave blank to keep');
  // Set a new password on Incoming Call through the page.
  await row('incoming_call').locator('.row-toggle').click();
  await page.fill('#f-incoming_call-username', 'phone');
  await page.fill('#f-incoming_call-password', NEW_PW);
  await page.click('#save');
  await page.locator('#save-state', { hasText: 'in force' }).waitFor({ timeout: WAIT });
  assert.match(readCfg(), new RegExp(NEW_PW), 'the daemon stored it');
  assert.match(readCfg(), new RegExp(URL_PW), 'saving the whole config kept the password inside a URL');
  assert.match(await row('hold_call').locator('.url').textContent(), /^http:\/\/bob:\*\*\*\*@127/);
  if (!await page.isVisible('#f-incoming_call-password')) await row('incoming_call').locator('.row-toggle').click();
  assert.equal(await page.inputValue('#f-incoming_call-password'), '');
  assert.match(await row('incoming_call').locator('label[for="f-incoming_call-password"] .badge').textContent(), /^set$/);
  // The receiver gets it as Basic auth; the page never shows it.
  const dom = await page.evaluate(() => document.documentElement.outerHTML + [...document.querySelectorAll('input,textarea')].map((e) => e.value).join('\n'));
  const src = (await (await fetch(base + '/')).text()) + (await (await fetch(base + '/app.js')).text());
  const direct = [];
  for (const p of ['config', 'status', 'session', 'events/incoming_call', 'events/terminate_call']) direct.push(await (await page.request.get(base + '/api/v1/' + p)).text());
  for (const s of SECRETS) {
    assert.ok(!dom.includes(s), 'a password is in the DOM');
    assert.ok(!src.includes(s), 'a password is in the page source');
    for (const [u, t] of apiBodies) assert.ok(!t.includes(s), 'a password is in the API response of ' + u);
    for (const t of direct) assert.ok(!t.includes(s), 'a password is in an API response');
  }
  assert.ok(apiBodies.length > 10, 'the API responses were seen');
});

step('signing secret and extra headers in the editor: write-only, and every page save keeps them and max_age_s', async () => {
  // Stored ones are shown as "set" / ****, never as their value.
  if (!await page.isVisible('#f-terminate_call-signing_secret')) await row('terminate_call').locator('.row-toggle').click();
  assert.equal(await page.inputValue('#f-terminate_call-signing_secret'), '');
  assert.match(await row('terminate_call').locator('label[for="f-terminate_call-signing_secret"] .badge').textContent(), /^set$/);
  const hdr = row('terminate_call').locator('#f-terminate_call-headers input');
  assert.deepEqual(await hdr.evaluateAll((l) => l.map((e) => e.value)), ['X-Api-Key', '****', 'X-Site', 'lab-$mac']);
  assert.equal(await page.inputValue('#dl-max_age_s'), '900');
  assert.equal(await page.locator('[id="dl-spool.path"]').inputValue(), '');
  // Set a signing secret and add a header on Incoming Call; save.
  await row('incoming_call').locator('.row-toggle').click();
  await page.fill('#f-incoming_call-signing_secret', NEW_SIGN);
  await row('incoming_call').locator('button', { hasText: 'Add header' }).click();
  const rows = row('incoming_call').locator('#f-incoming_call-headers .pw-row');
  await rows.last().locator('input').first().fill('X-Desk');
  await rows.last().locator('input').nth(1).fill('desk-$remote');
  await until('the preview with the header', async () => /X-Desk: desk-1002/.test(await page.textContent('#pv-incoming_call')));
  assert.match(await page.textContent('#pv-incoming_call'), /X-Event-Notify-Signature/);
  await page.click('#save');
  await page.locator('#save-state', { hasText: 'in force' }).waitFor({ timeout: WAIT });
  const cfg = JSON.parse(readCfg());
  assert.equal(cfg.events.incoming_call.signing_secret, NEW_SIGN);
  assert.deepEqual(cfg.events.incoming_call.headers, { 'X-Desk': 'desk-$remote' });
  assert.equal(cfg.events.terminate_call.signing_secret, SIGN, 'an untouched event keeps its secret');
  assert.deepEqual(cfg.events.terminate_call.headers, { 'X-Api-Key': HDR_KEY, 'X-Site': 'lab-$mac' });
  assert.equal(cfg.delivery.max_age_s, 900);
  assert.equal(cfg.delivery.signing_secret, DL_SIGN);
  if (!await page.isVisible('#f-incoming_call-signing_secret')) await row('incoming_call').locator('.row-toggle').click();
  assert.equal(await page.inputValue('#f-incoming_call-signing_secret'), '');
  assert.match(await row('incoming_call').locator('label[for="f-incoming_call-signing_secret"] .badge').textContent(), /^set$/);
  // The receiver gets the header and a signature; the page shows no secret anywhere.
  const n = recv.out.length;
  execFileSync(BIN, ['emit', 'incoming_call', 'call_id=s1', 'remote=1003', '--socket', path.join(tmp, 'sock')]);
  await until('the signed notification', () => /^GET \/in\?from=1003/m.test(recv.out.slice(n)));
  const dom = await page.evaluate(() => document.documentElement.outerHTML + [...document.querySelectorAll('input,textarea')].map((e) => e.value).join('\n'));
  const src = (await (await fetch(base + '/')).text()) + (await (await fetch(base + '/app.js')).text());
  const direct = [];
  for (const p of ['config', 'status', 'events/incoming_call', 'events/terminate_call']) direct.push(await (await page.request.get(base + '/api/v1/' + p)).text());
  for (const s of SECRETS) {
    assert.ok(!dom.includes(s), 'a secret is in the DOM');
    assert.ok(!src.includes(s), 'a secret is in the page source');
    for (const [u, t] of apiBodies) assert.ok(!t.includes(s), 'a secret is in the API response of ' + u);
    for (const t of direct) assert.ok(!t.includes(s), 'a secret is in an API response');
  }
});

step('two admins: the second save with a stale ETag is refused clearly and keeps the edits', async () => {
  const other = await ctx.newPage();
  await other.goto(base + '/');
  await other.locator('#ev-dnd_off').waitFor();
  // The first admin starts editing; the other one saves first.
  await row('dnd_off').locator('.row-toggle').click();
  await page.fill('#f-dnd_off-url', `127.0.0.1:${rport}/dnd-off-mine`);
  await other.locator('#ev-dnd_on .switch').click();
  await other.fill('#f-dnd_on-url', `127.0.0.1:${rport}/dnd-on-theirs`);
  await other.click('#save');
  await other.locator('#save-state', { hasText: 'in force' }).waitFor({ timeout: WAIT });
  await other.close();
  const before = readCfg();
  await page.click('#save');
  await page.locator('#save-msg', { hasText: 'someone else changed the configuration' }).waitFor({ timeout: WAIT });
  assert.equal(readCfg(), before, 'not silently overwritten');
  assert.equal(await page.inputValue('#f-dnd_off-url'), `127.0.0.1:${rport}/dnd-off-mine`);
  assert.equal(await row('dnd_off').locator('.badge.warn').isVisible(), true);
  // Load theirs, keep mine on top, save: both are in force.
  await page.locator('#save-msg button').click();
  await until('their change', async () => /dnd-on-theirs/.test(await row('dnd_on').locator('.url').textContent()));
  assert.equal(await page.inputValue('#f-dnd_off-url'), `127.0.0.1:${rport}/dnd-off-mine`);
  await page.click('#save');
  await page.locator('#save-state', { hasText: 'in force' }).waitFor({ timeout: WAIT });
  const cfg = readCfg();
  assert.match(cfg, /dnd-on-theirs/);
  assert.match(cfg, /dnd-off-mine/);
});

step('leaving with unsaved changes asks first', async () => {
  await page.click('#dl-attempts');
  await page.fill('#dl-attempts', '5'); // the default is 0 (until delivered) or 8: never 5
  assert.match(await page.textContent('#save-state'), /1 unsaved change/);
  let asked = false;
  page.once('dialog', async (d) => { asked = d.type() === 'beforeunload'; await d.dismiss(); });
  await page.close({ runBeforeUnload: true });
  await until('the beforeunload question', () => asked);
  assert.equal(page.isClosed(), false, 'the page stays when the admin says no');
});

step('a session that ends keeps the unsaved edits: sign in again and they are there', async () => {
  // End the session from outside (as the idle timeout would); the page notices at its next call.
  const { csrf_token: csrf } = await (await page.request.get(base + '/api/v1/session')).json();
  const r = await page.request.post(base + '/api/v1/logout', { headers: { 'X-CSRF-Token': csrf, Origin: base } });
  assert.equal(r.status(), 204);
  await page.locator('#login-msg', { hasText: 'unsaved changes are kept' }).waitFor({ timeout: WAIT });
  await page.fill('#login-pass', ADMIN_PW);
  await page.press('#login-pass', 'Enter');
  await page.locator('#app-view').waitFor();
  assert.equal(await page.inputValue('#dl-attempts'), '5');
  assert.match(await page.textContent('#save-state'), /1 unsaved change/);
});

step('screenshots: desktop (1280 px) and phone (360 px), no sideways scrolling', async () => {
  page.once('dialog', (d) => d.accept());
  await page.click('#discard');
  const closed = async () => {
    for (const t of await page.locator('.ev.open .row-toggle').all()) await t.click();
    await page.evaluate(() => { document.activeElement.blur(); window.scrollTo(0, 0); });
    await page.mouse.move(0, 0);
  };
  const opened = async () => {
    await row('incoming_call').locator('.row-toggle').click();
    await page.locator('#pv-incoming_call', { hasText: 'GET http' }).waitFor();
    await page.evaluate(() => { document.activeElement.blur(); document.getElementById('ev-incoming_call').scrollIntoView(); window.scrollBy(0, -90); });
    await page.mouse.move(0, 0);
  };
  await closed();
  await page.screenshot({ path: path.join(SHOTS, 'desktop-list.png'), fullPage: true });
  await opened();
  await page.setViewportSize({ width: 1280, height: 1100 });
  await page.screenshot({ path: path.join(SHOTS, 'desktop-edit.png') });
  await page.setViewportSize({ width: 360, height: 780 });
  await closed();
  const w = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(w <= 360, `no sideways scrolling at 360 px (page is ${w} px wide)`);
  await page.screenshot({ path: path.join(SHOTS, 'phone-list.png') });
  await opened();
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth) <= 360, 'the open editor fits 360 px');
  await page.screenshot({ path: path.join(SHOTS, 'phone-edit.png') });
  await page.setViewportSize({ width: 1280, height: 900 });
});

step('logout ends the session', async () => {
  await page.click('#logout');
  await page.locator('#login-view').waitFor();
  assert.match(await page.textContent('#login-msg'), /logged out/);
  const r = await page.request.get(base + '/api/v1/config');
  assert.equal(r.status(), 401);
  await page.reload();
  await page.locator('#login-user').waitFor();
  assert.equal(await page.isVisible('#app-view'), false);
});

step('repeated wrong passwords lock the login, and the page says for how long', async () => {
  const msg = page.locator('#login-msg');
  for (let i = 0; i < 6 && !/locked/.test(await msg.textContent()); i++) {
    await page.fill('#login-user', 'admin');
    await page.fill('#login-pass', 'wrong-' + i);
    await page.press('#login-pass', 'Enter');
    await until('an answer', async () => (await page.inputValue('#login-pass')) === '' && await msg.isVisible());
    await page.waitForTimeout(100);
  }
  assert.match(await msg.textContent(), /Too many failed sign-ins: locked, try again in \d+ s\./);
  assert.equal(await page.isVisible('#app-view'), false);
});

step('no script error in the page during all of this', () => {
  assert.deepEqual(pageErrors, []);
});
