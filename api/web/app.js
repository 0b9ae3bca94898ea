// skuflow operations page. Plain JavaScript, no build step, nothing from
// another site. Everything shown is set with textContent, never as HTML.
'use strict';

(() => {
  const TOKEN_KEY = 'skuflow.token';
  const JOB_ROWS = 25;         // jobs shown in the table
  const FEED_ROWS = 60;        // feed entries kept
  const AGG_ROWS = 10;         // rows of each aggregate
  const ACTIVE_POLL_MS = 2000; // progress of running jobs, besides the feed
  const JOBS_POLL_MS = 15000;  // the whole list, in case the feed missed something

  const state = {
    token: '',
    open: false,            // the server needs no token (loopback)
    types: [],
    jobs: new Map(),        // id -> {job, progress}
    selected: '',           // job id whose detail is shown
    errorsNext: '',
    staged: null,           // the file chosen for upload
    ws: null,
    retry: 0,
    aggTimers: new Map(),   // type -> pending refresh
    aggMissing: false,      // GET /v1/aggregates answers 404 on this server
    hadFeed: false,         // the feed was connected before (a reconnect reloads the jobs)
    timers: [],
  };

  const $ = (id) => document.getElementById(id);

  // el makes an element; children that are strings become text nodes.
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'title') e.title = v;
      else if (k.startsWith('data-')) e.setAttribute(k, String(v));
      else e[k] = v;
    }
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function show(id, on) { $(id).hidden = !on; }

  function say(id, text, kind) {
    const e = $(id);
    e.replaceChildren();
    if (Array.isArray(text)) e.append(...text); else e.textContent = text;
    e.className = 'message' + (kind ? ' ' + kind : '');
    e.hidden = !text || (Array.isArray(text) && text.length === 0);
  }

  // --- formatting ------------------------------------------------------

  const nf = new Intl.NumberFormat();
  const num = (n) => nf.format(Number(n || 0));

  function bytes(n) {
    if (n === undefined || n === null || n < 0) return '';
    const u = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(1)) + ' ' + u[i];
  }

  function when(t) {
    if (!t) return '';
    const d = new Date(t);
    if (isNaN(d) || d.getFullYear() < 2000) return '';
    const today = new Date();
    const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    if (d.toDateString() === today.toDateString()) return time;
    return d.toLocaleDateString([], { month: 'short', day: 'numeric' }) + ' ' + time;
  }

  function seconds(s) {
    if (!s) return '';
    if (s < 1) return Math.round(s * 1000) + ' ms';
    if (s < 120) return s.toFixed(1) + ' s';
    return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s';
  }

  function fileName(source) {
    if (!source) return '';
    const s = String(source).replace(/[?#].*$/, '');
    const parts = s.split(/[\\/]/);
    return parts[parts.length - 1] || s;
  }

  // --- the API ---------------------------------------------------------

  async function api(path, opts = {}) {
    const headers = new Headers(opts.headers || {});
    if (state.token) headers.set('Authorization', 'Bearer ' + state.token);
    let resp;
    try {
      resp = await fetch(path, { ...opts, headers, cache: 'no-store' });
    } catch (err) {
      return { status: 0, body: null, message: 'The server did not answer (' + err.message + ').' };
    }
    const text = await resp.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch { body = null; }
    const message = (body && body.error && body.error.message) || text || resp.statusText;
    if (resp.status === 401 && state.token && path !== '/v1/types') {
      signOut('The server no longer accepts this token. Sign in again.');
    }
    return { status: resp.status, body, message, headers: resp.headers };
  }

  // --- signing in ------------------------------------------------------

  async function boot() {
    state.token = sessionStorage.getItem(TOKEN_KEY) || '';
    const r = await api('/v1/types');
    show('loading', false);
    if (r.status === 200) {
      state.open = !state.token;
      start(r.body);
      return;
    }
    if (state.token) sessionStorage.removeItem(TOKEN_KEY);
    state.token = '';
    showSignIn(r.status === 401 ? '' : signInProblem(r));
  }

  function signInProblem(r) {
    if (r.status === 0) return r.message;
    if (r.status === 401) return 'The server does not know this token. Check that it was copied whole.';
    if (r.status === 403) return 'This token may not read: ' + r.message;
    if (r.status === 429) return 'Too many tries; wait a moment. (' + r.message + ')';
    return 'The server answered ' + r.status + ': ' + r.message;
  }

  function showSignIn(problem) {
    show('app', false);
    show('sign-out', false);
    show('live', false);
    show('sign-in', true);
    if (problem) say('sign-in-error', problem, 'bad'); else show('sign-in-error', false);
    $('token').value = '';
    $('token').focus();
  }

  async function signIn(ev) {
    ev.preventDefault();
    const token = $('token').value.trim();
    if (!token) return;
    $('sign-in-button').disabled = true;
    state.token = token;
    const r = await api('/v1/types');
    $('sign-in-button').disabled = false;
    if (r.status !== 200) {
      state.token = '';
      say('sign-in-error', signInProblem(r), 'bad');
      $('token').select();
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    state.open = false;
    show('sign-in', false);
    start(r.body);
  }

  function signOut(why) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = '';
    stop();
    showSignIn(why || '');
  }

  function stop() {
    for (const t of state.timers) clearInterval(t);
    state.timers = [];
    for (const t of state.aggTimers.values()) clearTimeout(t);
    state.aggTimers.clear();
    if (state.ws) { state.ws.onclose = null; state.ws.close(1000, 'signed out'); state.ws = null; }
    state.jobs.clear();
    state.selected = '';
  }

  // --- the page after signing in ---------------------------------------

  function start(typesBody) {
    state.types = (typesBody && typesBody.types) || [];
    show('app', true);
    show('open-note', state.open);
    show('sign-out', !state.open);
    show('live', true);
    show('detail', false);
    fillTypes();
    renderAggShells();
    loadJobs();
    connectFeed();
    for (const t of state.types) refreshAggregates(t.name, 0);
    state.timers.push(setInterval(pollActive, ACTIVE_POLL_MS));
    state.timers.push(setInterval(loadJobs, JOBS_POLL_MS));
  }

  function fillTypes() {
    const sel = $('type');
    const before = sel.value;
    sel.replaceChildren();
    for (const t of state.types) sel.append(el('option', { value: t.name }, t.name));
    if (!state.types.length) sel.append(el('option', { value: 'products' }, 'products'));
    sel.value = state.types.some((t) => t.name === before) ? before : (sel.options[0] && sel.options[0].value);
  }

  // --- jobs ------------------------------------------------------------

  async function loadJobs() {
    const r = await api('/v1/jobs?limit=' + JOB_ROWS);
    if (r.status !== 200) {
      if (r.status !== 401) say('jobs-error', 'Could not read the jobs: ' + r.message, 'bad');
      return;
    }
    show('jobs-error', false);
    const fresh = new Map();
    for (const j of r.body.jobs || []) {
      const old = state.jobs.get(j.id);
      // The list has no progress; keep what the feed or a poll told.
      fresh.set(j.id, { job: j, progress: j.progress || (old && old.job.state === j.state ? old.progress : null) });
    }
    // A job the feed told of that is not in the list yet stays.
    for (const [id, v] of state.jobs) if (!fresh.has(id) && isActive(v.job)) fresh.set(id, v);
    state.jobs = fresh;
    renderJobs();
  }

  function isActive(j) { return j.state === 'producing' || j.state === 'produced'; }

  function stalled(j) {
    return j.state === 'producing' && j.updated_at && Date.now() - new Date(j.updated_at).getTime() > 30000;
  }

  function upsertJob(j, progress) {
    // A failed job's answer (422) holds the API's error object where the
    // job's own error text would be.
    if (j.error && typeof j.error === 'object') j = Object.assign({}, j, { error: j.error.message || '' });
    const old = state.jobs.get(j.id);
    const keepProgress = progress || (old && old.job.state === j.state ? old.progress : null);
    state.jobs.set(j.id, { job: Object.assign({}, old ? old.job : {}, j), progress: keepProgress });
    scheduleRender();
    if (state.selected === j.id) {
      renderDetail();
      if (!old || old.job.state !== j.state || old.job.records_rejected !== j.records_rejected) loadErrors(true);
    }
    if (j.state === 'done' && (!old || old.job.state !== 'done')) refreshAggregates(j.type || 'products');
  }

  // pollActive asks for the progress of running jobs: 425 with progress
  // while they load, 200 once done, 422 once failed.
  async function pollActive() {
    const active = [...state.jobs.values()].filter((v) => isActive(v.job)).slice(0, 5);
    for (const v of active) {
      const r = await api('/v1/jobs/' + encodeURIComponent(v.job.id));
      if (r.body && r.body.id && (r.status === 200 || r.status === 425 || r.status === 422)) {
        upsertJob(r.body, r.body.progress || null);
      }
    }
  }

  let renderPending = false;
  function scheduleRender() {
    if (renderPending) return;
    renderPending = true;
    requestAnimationFrame(() => { renderPending = false; renderJobs(); });
  }

  const STATE_LABEL = { producing: 'Reading', produced: 'Loading', done: 'Done', failed: 'Failed' };
  const STATE_HELP = {
    producing: 'The file is being read and its records sent on.',
    produced: 'Every record was sent; ClickHouse is taking them in.',
    done: 'Every record is stored and counted.',
    failed: 'The job stopped before its end; the reason is given with it.',
    stalled: 'No word from the loader for a while; it may have stopped.',
  };

  function stateBadge(j) {
    const s = stalled(j) ? 'stalled' : j.state;
    const label = s === 'stalled' ? 'Stalled' : (STATE_LABEL[s] || s);
    return el('span', { class: 'state ' + s, title: STATE_HELP[s] || '', 'data-state': j.state }, label);
  }

  // progressOf says how far a job is: pct from 0 to 1, or null when it
  // cannot be known (reading a file of unknown record count).
  function progressOf(j, progress) {
    switch (j.state) {
      case 'producing':
        return { pct: null, label: num(j.records_read) + ' records read' };
      case 'produced': {
        if (!progress || !progress.length) return { pct: null, label: 'Loading ' + num(j.records_produced) + ' records' };
        const behind = Math.max(...progress.map((g) => g.records_behind || 0));
        const total = Number(j.records_produced || 0);
        const pct = total > 0 ? Math.min(1, Math.max(0, 1 - behind / total)) : (behind === 0 ? 1 : 0);
        return { pct, label: Math.floor(pct * 100) + '% loaded · ' + num(behind) + ' to go' };
      }
      case 'done':
        return { pct: 1, label: 'All ' + num(j.records_produced) + ' stored', kind: 'done' };
      case 'failed':
        return { pct: 1, label: j.error || 'Failed', kind: 'failed' };
      default:
        return { pct: null, label: '' };
    }
  }

  function progressBar(j, progress) {
    const p = progressOf(j, progress);
    if (p.kind === 'failed') {
      return el('div', { class: 'progress' }, el('span', { class: 'label bad', title: p.label }, p.label));
    }
    const track = el('div', { class: 'bar-track' + (p.pct === null ? ' busy' : '') + (p.kind ? ' ' + p.kind : '') },
      el('div', { class: 'bar-fill' }));
    if (p.pct !== null) track.firstChild.style.width = (p.pct * 100).toFixed(1) + '%';
    track.setAttribute('role', 'progressbar');
    if (p.pct !== null) track.setAttribute('aria-valuenow', String(Math.round(p.pct * 100)));
    return el('div', { class: 'progress' }, track, el('span', { class: 'label', title: p.label }, p.label));
  }

  function renderJobs() {
    const rows = [...state.jobs.values()].sort((a, b) =>
      (b.job.started_at || '').localeCompare(a.job.started_at || '') || b.job.id.localeCompare(a.job.id));
    const tbody = $('jobs').tBodies[0];
    tbody.replaceChildren();
    for (const { job: j, progress } of rows.slice(0, JOB_ROWS)) {
      const tr = el('tr', { 'data-job': j.id, tabIndex: 0, class: j.id === state.selected ? 'selected' : '' },
        el('td', { class: 'file', title: j.source || '' }, fileName(j.source) || j.id),
        el('td', {}, j.type || 'products'),
        el('td', {}, stateBadge(j)),
        el('td', {}, progressBar(j, progress)),
        el('td', { class: 'num' }, num(j.records_produced || j.records_read)),
        el('td', { class: 'num' }, num(j.records_rejected)),
        el('td', { class: 'muted' }, when(j.started_at)));
      tr.addEventListener('click', () => selectJob(j.id));
      tr.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); selectJob(j.id); } });
      tbody.append(tr);
    }
    show('jobs-empty', rows.length === 0);
    show('jobs', rows.length > 0);
  }

  // --- a job's detail --------------------------------------------------

  async function selectJob(id) {
    state.selected = id;
    renderJobs();
    show('detail', true);
    if (!state.jobs.has(id)) {
      const r = await api('/v1/jobs/' + encodeURIComponent(id));
      if (r.body && r.body.id) state.jobs.set(id, { job: r.body, progress: r.body.progress || null });
      renderJobs();
    }
    renderDetail();
    loadErrors(true);
    $('detail').scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }

  function renderDetail() {
    const v = state.jobs.get(state.selected);
    if (!v) return;
    const j = v.job;
    $('detail-title').textContent = 'Job ' + (fileName(j.source) || j.id);
    const dl = $('detail-fields');
    dl.replaceChildren();
    const add = (label, value, cls) => {
      if (value === undefined || value === null || value === '') return;
      dl.append(el('dt', {}, label), value instanceof Node ? el('dd', { class: cls }, value) : el('dd', { class: cls }, value));
    };
    add('State', el('span', {}, stateBadge(j), ' ', STATE_HELP[stalled(j) ? 'stalled' : j.state] || ''));
    if (j.state === 'failed') add('Reason', j.error, 'error');
    if (isActive(j)) add('Progress', progressOf(j, v.progress).label);
    add('Job id', j.id, 'mono');
    add('Source', j.source);
    add('Record type', j.type || 'products');
    add('Records', num(j.records_read) + ' read · ' + num(j.records_produced) + ' accepted · ' + num(j.records_rejected) + ' rejected');
    add('Format', [j.format, j.compression].filter(Boolean).join(', '));
    add('Size', bytes(j.size_bytes));
    add('Started', when(j.started_at));
    if (j.finished_at) add(j.state === 'failed' ? 'Failed at' : 'Finished', when(j.finished_at));
    if (j.load_seconds) add('Took', seconds(j.load_seconds));
    add('Started by', j.origin);
    add('Content SHA-256', j.sha256, 'mono');
  }

  async function loadErrors(reset) {
    const id = state.selected;
    if (!id) return;
    const tbody = $('errors').tBodies[0];
    if (reset) { tbody.replaceChildren(); state.errorsNext = ''; }
    let path = '/v1/jobs/' + encodeURIComponent(id) + '/errors?limit=100';
    if (!reset && state.errorsNext) path += '&after=' + encodeURIComponent(state.errorsNext);
    const r = await api(path);
    if (state.selected !== id) return;
    if (r.status !== 200) {
      $('errors-summary').textContent = 'Could not read the rejected records: ' + r.message;
      return;
    }
    for (const e of r.body.errors || []) {
      tbody.append(el('tr', {},
        el('td', { class: 'num' }, e.line ? num(e.line) : ''),
        el('td', {}, e.stage),
        el('td', {}, e.reason),
        el('td', { class: 'raw', title: e.raw }, e.raw && e.raw.length > 300 ? e.raw.slice(0, 300) + '…' : e.raw)));
    }
    state.errorsNext = r.body.next || '';
    const total = Number(r.body.total || 0);
    const shown = tbody.rows.length;
    $('errors-summary').textContent = total === 0
      ? 'None: every record of this job was accepted.'
      : (shown < total ? 'Showing ' + num(shown) + ' of ' + num(total) + '.' : num(total) + (total === 1 ? ' record was' : ' records were') + ' set aside, each with its reason.');
    show('errors', shown > 0);
    show('errors-more', !!state.errorsNext && shown < total);
  }

  // --- upload ----------------------------------------------------------

  function stage(file) {
    if (!file) return;
    state.staged = file;
    $('staged-name').textContent = file.name;
    $('staged-size').textContent = '(' + bytes(file.size) + ')';
    $('staged-type').textContent = $('type').value;
    show('staged', true);
    show('upload-message', false);
    $('upload-button').focus();
  }

  function unstage() {
    state.staged = null;
    $('file-input').value = '';
    show('staged', false);
  }

  function upload() {
    const file = state.staged;
    if (!file) return;
    const type = $('type').value;
    const form = new FormData();
    form.append('file', file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/v1/files?type=' + encodeURIComponent(type) + '&name=' + encodeURIComponent(file.name));
    if (state.token) xhr.setRequestHeader('Authorization', 'Bearer ' + state.token);
    const bar = $('upload-progress');
    bar.hidden = false;
    bar.firstElementChild.style.width = '0%';
    $('upload-button').disabled = true;
    say('upload-message', 'Sending ' + file.name + '…');
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) bar.firstElementChild.style.width = (100 * e.loaded / e.total).toFixed(1) + '%';
    };
    xhr.onerror = () => finish(0, null, 'The connection to the server failed.');
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { body = null; }
      finish(xhr.status, body, (body && body.error && body.error.message) || xhr.statusText);
    };
    xhr.send(form);

    function finish(status, body, message) {
      $('upload-button').disabled = false;
      bar.hidden = true;
      if (status === 202 && body && body.id) {
        unstage();
        upsertJob(body, null);
        say('upload-message', [
          'Uploaded ' + file.name + '. It is now ',
          jobLink(body.id, 'job ' + body.id),
          '; its progress shows in the table below.'], 'good');
        return;
      }
      if (status === 409 && body && body.error) {
        const earlier = body.error.job;
        say('upload-message', [
          'Not loaded again: ' + message + ' ',
          earlier ? jobLink(earlier, 'Show the earlier job') : ''], 'bad');
        return;
      }
      const hint = {
        0: '',
        401: ' Sign in again.',
        403: ' Your token may not upload files; it needs the write scope.',
        413: ' The file is larger than this server accepts.',
        415: ' Send JSON, NDJSON or CSV (optionally gzip or zstd).',
        429: ' Too many requests; try again in a moment.',
      }[status] || '';
      say('upload-message', 'Upload failed' + (status ? ' (' + status + ')' : '') + ': ' + message + hint, 'bad');
      if (status === 401 && state.token) signOut('The server no longer accepts this token. Sign in again.');
    }
  }

  function jobLink(id, text) {
    const a = el('button', { type: 'button', class: 'link' }, text);
    a.addEventListener('click', () => selectJob(id));
    return a;
  }

  // --- the live feed ---------------------------------------------------

  function setLive(kind, text, title) {
    const p = $('live');
    p.className = 'pill ' + kind;
    $('live-text').textContent = text;
    p.title = title || '';
  }

  function connectFeed() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let url = proto + '//' + location.host + '/v1/feed';
    if (state.token) url += '?access_token=' + encodeURIComponent(state.token);
    setLive('', 'Connecting…');
    const ws = new WebSocket(url);
    state.ws = ws;
    ws.onmessage = (m) => {
      let e;
      try { e = JSON.parse(m.data); } catch { return; }
      onEvent(e);
    };
    ws.onclose = (c) => {
      if (state.ws !== ws) return;
      state.ws = null;
      const wait = Math.min(10, 1 + state.retry * 2);
      state.retry++;
      const why = c.code === 1008 ? 'This page fell behind the live feed; it reconnects and reloads.'
        : c.code === 1001 ? 'The server is restarting.' : 'The connection to the server was lost.';
      setLive('down', 'Reconnecting…', why);
      setTimeout(() => { if (!state.ws && $('app').hidden === false) connectFeed(); }, wait * 1000);
    };
  }

  function onEvent(e) {
    switch (e.kind) {
      case 'hello':
        state.retry = 0;
        setLive('live', 'Live', 'Jobs and records show here as they happen.');
        if (state.hadFeed) loadJobs(); // what happened while away
        state.hadFeed = true;
        break;
      case 'job':
        if (e.job && e.job.id) {
          upsertJob(e.job, e.progress || null);
          feedJob(e);
        }
        break;
      case 'records':
        feedRecords(e);
        refreshAggregates(e.type || 'products');
        break;
    }
  }

  const lastFeedState = new Map();
  function feedJob(e) {
    const j = e.job;
    // Progress ticks change the table, not the feed: it tells of new states.
    if (lastFeedState.get(j.id) === j.state) return;
    lastFeedState.set(j.id, j.state);
    const what = {
      producing: 'started',
      produced: 'sent ' + num(j.records_produced) + ' records; loading',
      done: 'done: ' + num(j.records_produced) + ' records stored' + (j.records_rejected ? ', ' + num(j.records_rejected) + ' rejected' : ''),
      failed: 'failed: ' + (j.error || ''),
    }[j.state] || j.state;
    const name = el('button', { type: 'button', class: 'link' }, fileName(j.source) || j.id);
    name.addEventListener('click', () => selectJob(j.id));
    addFeed(e.at, el('span', { class: 'what' }, el('span', { class: 'tag' }, 'file'), name, ' ' + what));
  }

  function feedRecords(e) {
    const n = Number(e.records || 0);
    addFeed(e.at,
      el('span', { class: 'what' }, el('span', { class: 'tag' }, e.type || 'records'), num(n) + (n === 1 ? ' record accepted' : ' records accepted')),
      e.sample ? el('span', { class: 'sample', title: e.sample }, e.sample) : null);
  }

  function addFeed(at, ...parts) {
    const list = $('feed');
    const li = el('li', { class: 'fresh' }, el('span', { class: 'time' }, when(at || new Date().toISOString())), ...parts);
    list.prepend(li);
    while (list.children.length > FEED_ROWS) list.lastElementChild.remove();
    show('feed-empty', false);
  }

  // --- aggregates ------------------------------------------------------

  function renderAggShells() {
    const box = $('aggs');
    box.replaceChildren();
    let any = false;
    for (const t of state.types) {
      for (const a of t.aggregates || []) {
        any = true;
        box.append(el('div', { class: 'agg', id: 'agg-' + a.name, 'data-agg': a.name },
          el('h3', {}, el('span', {}, a.name), el('span', { class: 'muted' }, describeAgg(t, a))),
          el('p', { class: 'muted small' }, 'Loading…')));
      }
    }
    if (!any) box.append(el('p', { class: 'muted' }, 'No aggregates are declared.'));
  }

  function describeAgg(t, a) {
    return (a.sum ? 'sum of ' + a.sum : t.name + ' counted') + ' by ' + (a.by || []).join(', ');
  }

  // refreshAggregates reloads a type's aggregates soon, at most once a
  // second and a half however fast records arrive, and once more a few
  // seconds later: the aggregator writes its counts a moment after the
  // records are accepted.
  function refreshAggregates(type, delay = 1500) {
    const key = type + '@' + delay;
    if (state.aggTimers.has(key)) return;
    state.aggTimers.set(key, setTimeout(async () => {
      state.aggTimers.delete(key);
      const t = state.types.find((x) => x.name === type);
      if (t) for (const a of t.aggregates || []) await loadAggregate(t, a);
    }, delay));
    if (delay > 0 && delay < 5000) refreshAggregates(type, 5000);
  }

  async function loadAggregate(t, a) {
    const box = document.getElementById('agg-' + a.name);
    if (!box) return;
    const head = box.firstElementChild;
    const r = await api('/v1/aggregates/' + encodeURIComponent(a.name) + '?limit=' + AGG_ROWS);
    let body;
    if (r.status === 404 && !(r.body && r.body.error && r.body.error.code && r.body.error.code !== 'not_found')) {
      state.aggMissing = true;
      body = el('p', { class: 'muted small' }, 'Not available on this server yet.');
    } else if (r.status !== 200) {
      body = el('p', { class: 'message bad' }, 'Could not read it: ' + r.message);
    } else {
      body = aggTable(a, (r.body && r.body.rows) || []);
    }
    box.replaceChildren(head, body);
  }

  function aggTable(a, rows) {
    if (!rows.length) return el('p', { class: 'muted small' }, 'No rows yet.');
    let cols = [...(a.by || []), a.as].filter(Boolean);
    const first = rows[0];
    if (!Array.isArray(first) && first && typeof first === 'object') {
      const keys = Object.keys(first);
      if (!cols.every((c) => keys.includes(c))) cols = keys;
    }
    const value = (row, c, i) => {
      const v = Array.isArray(row) ? row[i] : row[c];
      if (v === null || v === undefined) return '';
      if (typeof v === 'object') return JSON.stringify(v);
      return typeof v === 'number' ? num(v) : String(v);
    };
    const isNum = (c) => c === a.as;
    return el('div', { class: 'table-wrap' }, el('table', {},
      el('thead', {}, el('tr', {}, ...cols.map((c) => el('th', { class: isNum(c) ? 'num' : '' }, c)))),
      el('tbody', {}, ...rows.map((row) => el('tr', {}, ...cols.map((c, i) => el('td', { class: isNum(c) ? 'num' : '' }, value(row, c, i))))))));
  }

  // --- wiring ----------------------------------------------------------

  function wire() {
    $('sign-in-form').addEventListener('submit', signIn);
    $('sign-out').addEventListener('click', () => signOut(''));
    $('detail-close').addEventListener('click', () => { state.selected = ''; show('detail', false); renderJobs(); });
    $('errors-more').addEventListener('click', () => loadErrors(false));
    $('type').addEventListener('change', () => { if (state.staged) $('staged-type').textContent = $('type').value; });

    const drop = $('drop');
    const input = $('file-input');
    drop.addEventListener('click', () => input.click());
    drop.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); input.click(); } });
    input.addEventListener('change', () => stage(input.files && input.files[0]));
    for (const name of ['dragenter', 'dragover']) {
      drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add('over'); });
    }
    for (const name of ['dragleave', 'dragend']) drop.addEventListener(name, () => drop.classList.remove('over'));
    drop.addEventListener('drop', (e) => {
      e.preventDefault();
      drop.classList.remove('over');
      stage(e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0]);
    });
    // A file dropped beside the zone must not make the browser leave the page.
    window.addEventListener('dragover', (e) => e.preventDefault());
    window.addEventListener('drop', (e) => e.preventDefault());
    $('upload-button').addEventListener('click', upload);
    $('upload-cancel').addEventListener('click', () => { unstage(); show('upload-message', false); });
  }

  wire();
  boot();
})();
