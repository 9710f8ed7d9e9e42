/*
 * The admin view: polls GET /api/cluster (nodes, online count, this node's
 * counters), GET /api/presence (who is online), GET /api/inbox (the
 * logged-in user's inbox depths) and GET /metrics (inbox drops) every second. Rates are the difference of two successive counter
 * samples of the same node over the time between them: behind a load
 * balancer successive polls may reach different nodes, so samples are kept
 * per answering node.
 */
'use strict';
(() => {
  const EVERY_MS = 1000;
  const HISTORY = 60;
  const COUNTERS = [
    { key: 'messagesDelivered', label: 'delivered to sessions', color: '#2f6fed' },
    { key: 'routedLocal', label: 'routed on this node', color: '#1f9d55' },
    { key: 'routedRemote', label: 'relayed to other nodes', color: '#8a4fff' },
    { key: 'storedInbox', label: 'stored in an inbox', color: '#d98b00' },
    { key: 'framesIn', label: 'frames in', color: null },
    { key: 'framesOut', label: 'frames out', color: null },
  ];

  const $ = (id) => document.getElementById(id);
  const previous = new Map(); // node id → { at, stats }
  const history = []; // { at, rates }
  let failures = 0;

  async function get(path, accept = 'application/json') {
    const response = await fetch(path, { credentials: 'same-origin', headers: { Accept: accept } });
    if (!response.ok) {
      const error = new Error(`${path}: HTTP ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return accept === 'application/json' ? response.json() : response.text();
  }

  async function tick() {
    try {
      const [cluster, presence, inbox, metrics] = await Promise.all([
        get('/api/cluster'),
        get('/api/presence').catch(() => null),
        get('/api/inbox').catch(() => null),
        get('/metrics', 'text/plain').catch(() => null),
      ]);
      failures = 0;
      render(cluster, presence, inbox, metrics);
      setStatus('live');
    } catch (error) {
      if (error.status === 401) return showLogin();
      failures++;
      setStatus(failures > 2 ? 'unreachable' : 'stale');
    }
    setTimeout(tick, EVERY_MS);
  }

  // ---- rendering ----------------------------------------------------------------

  function render(cluster, presence, inbox, metrics) {
    const now = Date.now();
    const nodes = (cluster.nodes || []).slice().sort((a, b) => String(a.id).localeCompare(String(b.id)));
    const self = cluster.self;
    $('seen-by').textContent = self ? `as seen by node ${self}` : '';

    // Tiles.
    const connections = nodes.reduce((sum, n) => sum + (n.connections || 0), 0);
    const sessions = nodes.reduce((sum, n) => sum + (n.sessions || 0), 0);
    $('t-nodes').textContent = String(nodes.length);
    $('t-connections').textContent = String(connections);
    $('t-sessions').textContent = String(sessions);
    const online = typeof cluster.online === 'number' ? cluster.online : presence ? presence.online : 0;
    $('t-online').textContent = String(online);

    // Nodes table.
    const rows = nodes.map((node) => {
      const tr = document.createElement('tr');
      tr.dataset.node = node.id;
      if (node.id === self) tr.classList.add('self');
      const beatAge = node.lastBeat ? now - node.lastBeat : NaN;
      tr.append(
        cell(node.id),
        cell(node.url || '—'),
        cell(String(node.connections ?? 0), 'num'),
        cell(String(node.sessions ?? 0), 'num'),
        cell(node.startedAt ? duration(now - node.startedAt) : '—', 'num'),
        cell(Number.isFinite(beatAge) ? `${(Math.max(0, beatAge) / 1000).toFixed(1)} s ago` : '—', `num${beatAge > 5000 ? ' stale' : ''}`),
      );
      return tr;
    });
    $('nodes').tBodies[0].replaceChildren(...rows);

    // Online users.
    const users = ((presence && presence.users) || []).slice().sort((a, b) => a.localeCompare(b));
    $('online-count').textContent = String(presence ? presence.online ?? users.length : online);
    $('online-users').replaceChildren(
      ...users.map((user) => {
        const li = document.createElement('li');
        li.dataset.user = user;
        const dot = document.createElement('span');
        dot.className = 'dot';
        li.append(dot, document.createTextNode(user));
        return li;
      }),
    );
    $('no-users').hidden = users.length > 0;

    // Rates from two samples of the same node.
    const stats = cluster.stats || {};
    const last = previous.get(self);
    previous.set(self, { at: now, stats });
    let rates = null;
    if (last && now > last.at) {
      const seconds = (now - last.at) / 1000;
      rates = {};
      for (const { key } of COUNTERS) rates[key] = Math.max(0, ((stats[key] || 0) - (last.stats[key] || 0)) / seconds);
      history.push({ at: now, rates });
      if (history.length > HISTORY) history.shift();
    }
    $('rates-node').textContent = self ? `· node ${self}` : '';
    $('t-delivered').textContent = rates ? rate(rates.messagesDelivered) : '–';
    $('t-frames').textContent = rates ? `${rate(rates.framesIn)} / ${rate(rates.framesOut)}` : '–';
    $('rates').tBodies[0].replaceChildren(
      ...COUNTERS.map(({ key, label }) => {
        const tr = document.createElement('tr');
        tr.dataset.counter = key;
        tr.append(cell(label), cell(rates ? rate(rates[key]) : '–', 'num'), cell(String(stats[key] ?? 0), 'num'));
        return tr;
      }),
    );
    drawSpark();

    // Inboxes: what this node stored for offline users, drops, and the viewer's own depths.
    $('t-inbox').textContent = String(stats.storedInbox ?? 0);
    $('t-inbox-sub').textContent = rates ? `${rate(rates.storedInbox)}/s · for offline users, by this node` : 'for offline users, by this node';
    $('i-stored').textContent = String(stats.storedInbox ?? 0);
    $('i-stored-rate').textContent = rates ? rate(rates.storedInbox) : '–';
    const dropped = metrics ? metricSum(metrics, 'stompbox_inbox_dropped_total') : null;
    $('i-dropped').textContent = dropped === null ? '–' : String(dropped);
    $('i-dead-letters').textContent = typeof cluster.deadLetters === 'number' ? String(cluster.deadLetters) : '–';
    $('i-recovering').textContent = Array.isArray(cluster.recovering) ? String(cluster.recovering.length) : '–';
    const depths = ((inbox && inbox.destinations) || []).filter((d) => d.depth > 0);
    $('inbox-user').textContent = inbox && inbox.user ? `(${inbox.user})` : '';
    $('inboxes').tBodies[0].replaceChildren(
      ...depths.map(({ destination, depth }) => {
        const tr = document.createElement('tr');
        tr.dataset.destination = destination;
        tr.append(cell(`/user${destination}`), cell(String(depth), 'num'));
        return tr;
      }),
    );
    $('no-inboxes').hidden = depths.length > 0;
  }

  /** Sum of a metric's samples in the Prometheus text, or null when absent. */
  function metricSum(text, name) {
    let sum = null;
    for (const line of text.split('\n')) {
      if (!line.startsWith(name)) continue;
      const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
      if (!match || match[1] !== name) continue;
      const value = Number(match[3]);
      if (Number.isFinite(value)) sum = (sum ?? 0) + value;
    }
    return sum;
  }

  function drawSpark() {
    const canvas = $('spark');
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth * ratio;
    const height = canvas.clientHeight * ratio;
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    canvas.dataset.samples = String(history.length);
    const g = canvas.getContext('2d');
    g.clearRect(0, 0, width, height);
    const series = COUNTERS.filter((c) => c.color);
    const max = Math.max(1, ...history.flatMap((h) => series.map((s) => h.rates[s.key])));
    g.strokeStyle = '#e1e5ec';
    g.lineWidth = 1;
    g.beginPath();
    g.moveTo(0, height - 0.5);
    g.lineTo(width, height - 0.5);
    g.stroke();
    g.fillStyle = '#6b7385';
    g.font = `${11 * ratio}px system-ui, sans-serif`;
    g.fillText(`${rate(max)}/s`, 4 * ratio, 12 * ratio);
    // The samples fill the width; once HISTORY are kept, the chart scrolls.
    const span = Math.max(1, history.length - 1);
    for (const s of series) {
      g.strokeStyle = s.color;
      g.lineWidth = 2 * ratio;
      g.beginPath();
      history.forEach((h, i) => {
        const x = width - ((history.length - 1 - i) / span) * width;
        const y = height - 3 * ratio - (h.rates[s.key] / max) * (height - 18 * ratio);
        if (i === 0) g.moveTo(x, y);
        else g.lineTo(x, y);
      });
      g.stroke();
    }
    $('legend').replaceChildren(
      ...series.map((s) => {
        const span = document.createElement('span');
        const swatch = document.createElement('i');
        swatch.style.background = s.color;
        span.append(swatch, document.createTextNode(`${s.label} /s`));
        return span;
      }),
    );
  }

  // ---- helpers ------------------------------------------------------------------

  function cell(text, className) {
    const td = document.createElement('td');
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function rate(value) {
    if (!Number.isFinite(value)) return '–';
    if (value >= 10) return String(Math.round(value));
    return value.toFixed(2).replace(/\.?0+$/, '') || '0';
  }

  function duration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }

  function setStatus(value) {
    const el = $('status');
    el.dataset.state = value;
    el.textContent = value;
    el.className = `pill ${value === 'live' ? 'pill-on' : value === 'stale' ? 'pill-wait' : 'pill-off'}`;
  }

  function showLogin() {
    $('admin-view').hidden = true;
    $('login-view').hidden = false;
    setStatus('logged out');
  }

  $('login-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = { user: $('login-name').value.trim() };
    if ($('login-password').value) body.password = $('login-password').value;
    const response = await fetch('/api/login', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
    });
    if (!response.ok) {
      $('login-error').hidden = false;
      $('login-error').textContent = `Could not log in (HTTP ${response.status}).`;
      return;
    }
    $('login-view').hidden = true;
    $('admin-view').hidden = false;
    void tick();
  });

  $('every').textContent = String(EVERY_MS / 1000);
  void tick();
})();
