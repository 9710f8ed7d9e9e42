/*
 * The chat page: log in (POST /api/login sets the session cookie, which the
 * WebSocket / SockJS handshake then carries), connect with @stomp/stompjs over
 * SockJS or a plain WebSocket, take what waited in the inbox (shown as
 * unread), subscribe, and talk to users and topics.
 *
 * Order on every (re)connect, so that nothing is lost or shown twice:
 *   1. POST /api/inbox/claim  claims the stored messages (unread), shows
 *                             them, then POST /api/inbox/ack deletes them: a
 *                             page closed in between loses nothing (the
 *                             claim returns to the inbox after its timeout;
 *                             a redelivery is recognised by its id);
 *   2. SUBSCRIBE with receipt anything stored after the claim is delivered by
 *                             the subscription itself, then live messages.
 * Messages are acknowledged (client-individual) only once shown, so one that
 * reached a closing page goes back to the inbox instead of being lost.
 */
'use strict';
(() => {
  /** The user's own chat destination: others send to /user/{name}/queue/chat. */
  const CHAT_DEST = '/queue/chat';
  /** Seed 002's convention (/wsTemplate/sendToUser delivers {"content": ...} here). */
  const SEED_DEST = '/topic/reply';
  const PRESENCE_EVERY_MS = 2000;
  const TOPIC_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

  const $ = (id) => document.getElementById(id);
  const state = {
    me: null,
    client: null,
    transport: localStorage.getItem('stompbox.transport') || 'sockjs',
    topics: new Map(), // name → subscription (or null while disconnected)
    presenceTimer: null,
    receipts: 0,
    seen: new Set(), // message ids shown, so a redelivery is not shown twice
  };

  // ---- HTTP API ---------------------------------------------------------------

  async function api(method, path, body) {
    const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const text = await response.text();
    let data;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      data = undefined;
    }
    if (!response.ok) {
      const error = new Error((data && data.error && data.error.message) || `HTTP ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  // ---- login / logout -----------------------------------------------------------

  async function login(event) {
    event.preventDefault();
    const name = $('login-name').value.trim();
    const password = $('login-password').value;
    const transport = document.querySelector('input[name="transport"]:checked').value;
    showError('login-error', '');
    $('login-button').disabled = true;
    try {
      const body = { user: name };
      if (password) body.password = password;
      const answer = await api('POST', '/api/login', body);
      $('login-password').value = '';
      state.transport = transport;
      localStorage.setItem('stompbox.transport', transport);
      startSession(answer.user || name);
    } catch (error) {
      showError('login-error', `Could not log in: ${error.message}`);
    } finally {
      $('login-button').disabled = false;
    }
  }

  async function restore() {
    const radio = document.querySelector(`input[name="transport"][value="${state.transport}"]`);
    if (radio) radio.checked = true;
    try {
      const answer = await api('GET', '/api/me');
      if (answer && answer.user) startSession(answer.user);
    } catch {
      // Not logged in: the form stays.
    }
  }

  async function logout() {
    stopSession();
    try {
      await api('POST', '/api/logout');
    } catch {
      // The cookie may be gone already.
    }
  }

  function startSession(user) {
    state.me = user;
    $('me').textContent = user;
    $('me-box').hidden = false;
    $('login-view').hidden = true;
    $('chat-view').hidden = false;
    if (!state.topics.size) state.topics.set('lobby', null);
    renderTopics();
    connect();
    pollPresence();
    state.presenceTimer = setInterval(pollPresence, PRESENCE_EVERY_MS);
    $('to-name').focus();
  }

  function stopSession() {
    clearInterval(state.presenceTimer);
    if (state.client) state.client.deactivate();
    state.client = null;
    state.me = null;
    state.topics.clear();
    state.seen.clear();
    $('messages').replaceChildren();
    $('online-list').replaceChildren();
    $('me-box').hidden = true;
    $('chat-view').hidden = true;
    $('login-view').hidden = false;
    $('where').textContent = '';
    setStatus('offline');
    updateUnread();
  }

  // ---- STOMP ------------------------------------------------------------------

  function connect() {
    const client = new StompJs.Client({
      // The session cookie identifies us on the handshake; login is a fallback the broker checks against it.
      connectHeaders: { login: state.me },
      reconnectDelay: 2000,
      heartbeatIncoming: 10000,
      heartbeatOutgoing: 10000,
      debug: () => {},
    });
    if (state.transport === 'sockjs') {
      client.webSocketFactory = () => new SockJS(`${location.origin}/chat-websocket`);
    } else {
      client.brokerURL = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/stomp`;
    }
    client.onConnect = (frame) => void onConnected(client, frame);
    client.onStompError = (frame) => {
      // A refused identity will not get better by reconnecting: back to the login form.
      if (/^ERR_AUTH/.test(frame.headers.code || '')) return sessionExpired();
      showError('send-error', `Broker error: ${frame.headers.message || 'unknown'}`);
    };
    client.onWebSocketClose = () => {
      if (state.client === client && state.me) setStatus('connecting');
    };
    state.client = client;
    setStatus('connecting');
    client.activate();
  }

  async function onConnected(client, frame) {
    if (state.client !== client) return;
    const session = frame.headers.session || '';
    const node = session.includes('-') ? session.slice(0, session.lastIndexOf('-')) : session;
    $('where').textContent = `node ${node || '?'} · ${state.transport === 'sockjs' ? 'SockJS' : 'WebSocket'}`;
    $('where').dataset.node = node;
    showError('send-error', '');
    // 1. What waited while we were away: claimed, shown as unread (oldest first), then acked.
    for (const destination of [CHAT_DEST, SEED_DEST]) {
      try {
        const claim = await api('POST', '/api/inbox/claim', { destination });
        if (!claim || !claim.claimId) continue;
        for (const stored of claim.messages) {
          addIncoming({ id: stored.id, sender: stored.sender, body: stored.body, destination, time: stored.timestamp, unread: true });
        }
        await api('POST', '/api/inbox/ack', { claimId: claim.claimId });
      } catch (error) {
        if (error.status === 401) return sessionExpired();
        showError('send-error', `Could not fetch unread messages: ${error.message}`);
      }
    }
    if (state.client !== client || !client.connected) return;
    // 2. Subscriptions, each confirmed by a receipt (in place cluster-wide).
    const pending = [
      subscribe(client, `/user${CHAT_DEST}`, (message) => onUserMessage(message, CHAT_DEST)),
      subscribe(client, `/user${SEED_DEST}`, (message) => onUserMessage(message, SEED_DEST)),
    ];
    for (const name of state.topics.keys()) pending.push(subscribeTopic(client, name));
    await Promise.all(pending);
    if (state.client === client && client.connected) setStatus('online');
  }

  function subscribe(client, destination, onMessage) {
    const receipt = `sub-${++state.receipts}`;
    const done = new Promise((resolve) => client.watchForReceipt(receipt, resolve));
    const subscription = client.subscribe(
      destination,
      (message) => {
        onMessage(message);
        message.ack();
      },
      { ack: 'client-individual', receipt },
    );
    return done.then(() => subscription);
  }

  function subscribeTopic(client, name) {
    return subscribe(client, `/topic/${name}`, (message) => {
      if (message.headers.sender === state.me) return; // shown when sent
      addIncoming({ id: message.headers['message-id'], sender: message.headers.sender, body: message.body, destination: `/topic/${name}`, topic: name });
    }).then((subscription) => state.topics.set(name, subscription));
  }

  function onUserMessage(message, destination) {
    let body = message.body;
    if (destination === SEED_DEST) body = seedContent(body);
    addIncoming({ id: message.headers['message-id'], sender: message.headers.sender, body, destination });
  }

  /** The seed's bodies are {"content": "<sender> say: <msg>"}. */
  function seedContent(body) {
    try {
      const parsed = JSON.parse(body);
      if (parsed && typeof parsed.content === 'string') return parsed.content;
    } catch {
      // plain text
    }
    return body;
  }

  function sendMessage(event) {
    event.preventDefault();
    const kind = $('to-kind').value;
    const name = $('to-name').value.trim();
    const text = $('message-input').value;
    showError('send-error', '');
    if (!name || !text) return;
    if (kind === 'topic' && !TOPIC_NAME.test(name)) return showError('send-error', 'A topic name is letters, digits, "_", "-" or ".".');
    const client = state.client;
    if (!client || !client.connected) return showError('send-error', 'Not connected yet; the message was not sent.');
    const destination = kind === 'user' ? `/user/${encodeURIComponent(name)}${CHAT_DEST}` : `/topic/${name}`;
    const receipt = `send-${++state.receipts}`;
    const item = addOutgoing({ to: kind === 'user' ? name : `#${name}`, body: text });
    client.watchForReceipt(receipt, () => {
      item.dataset.state = 'sent';
      item.querySelector('.state').textContent = '✓';
      item.querySelector('.state').title = 'accepted by the broker: delivered, or kept in the inbox';
    });
    try {
      client.publish({ destination, body: text, headers: { receipt, 'content-type': 'text/plain' } });
    } catch (error) {
      item.remove();
      return showError('send-error', `Not sent: ${error.message}`);
    }
    $('message-input').value = '';
    $('message-input').focus();
  }

  // ---- presence -----------------------------------------------------------------

  async function pollPresence() {
    if (!state.me) return;
    try {
      const answer = await api('GET', '/api/presence');
      renderPresence(answer);
    } catch (error) {
      if (error.status === 401) sessionExpired();
    }
  }

  function renderPresence(answer) {
    const users = ((answer && answer.users) || []).slice().sort((a, b) => a.localeCompare(b));
    $('online-count').textContent = String(answer && typeof answer.online === 'number' ? answer.online : users.length);
    const list = $('online-list');
    const items = users.map((user) => {
      const li = document.createElement('li');
      li.dataset.user = user;
      const dot = document.createElement('span');
      dot.className = 'dot';
      const name = document.createElement('span');
      name.textContent = user;
      li.append(dot, name);
      if (user === state.me) {
        li.classList.add('self');
        const you = document.createElement('span');
        you.className = 'muted';
        you.textContent = ' (you)';
        li.append(you);
      } else {
        li.tabIndex = 0;
        li.title = `Write to ${user}`;
        const pick = () => {
          $('to-kind').value = 'user';
          $('to-name').value = user;
          $('message-input').focus();
        };
        li.addEventListener('click', pick);
        li.addEventListener('keydown', (e) => e.key === 'Enter' && pick());
      }
      return li;
    });
    list.replaceChildren(...items);
    $('people-datalist').replaceChildren(
      ...users.filter((u) => u !== state.me).map((u) => Object.assign(document.createElement('option'), { value: u })),
    );
  }

  function sessionExpired() {
    stopSession();
    showError('login-error', 'Your session ended; please log in again.');
  }

  // ---- topics -------------------------------------------------------------------

  function joinTopic(event) {
    event.preventDefault();
    const name = $('topic-name').value.trim().replace(/^\/?topic\//, '');
    if (!TOPIC_NAME.test(name)) return showError('send-error', 'A topic name is letters, digits, "_", "-" or ".".');
    $('topic-name').value = '';
    if (state.topics.has(name)) return;
    state.topics.set(name, null);
    renderTopics();
    if (state.client && state.client.connected) void subscribeTopic(state.client, name);
  }

  function leaveTopic(name) {
    const subscription = state.topics.get(name);
    if (subscription && state.client && state.client.connected) subscription.unsubscribe();
    state.topics.delete(name);
    renderTopics();
  }

  function renderTopics() {
    const items = [...state.topics.keys()].map((name) => {
      const li = document.createElement('li');
      li.dataset.topic = name;
      const label = document.createElement('button');
      label.type = 'button';
      label.className = 'link';
      label.textContent = `#${name}`;
      label.title = `Write to #${name}`;
      label.addEventListener('click', () => {
        $('to-kind').value = 'topic';
        $('to-name').value = name;
        $('message-input').focus();
      });
      const leave = document.createElement('button');
      leave.type = 'button';
      leave.className = 'link subtle';
      leave.textContent = 'leave';
      leave.addEventListener('click', () => leaveTopic(name));
      li.append(label, leave);
      return li;
    });
    $('topic-list').replaceChildren(...items);
  }

  // ---- rendering ----------------------------------------------------------------

  function addIncoming({ id, sender, body, destination, topic, time, unread = false }) {
    if (id && state.seen.has(id)) return;
    if (id) state.seen.add(id);
    const item = messageItem({
      direction: 'in',
      who: sender || 'unknown',
      to: topic ? `#${topic}` : destination === SEED_DEST ? 'you (reply)' : 'you',
      body: String(body ?? ''),
      time: time ? new Date(time) : new Date(),
    });
    item.dataset.sender = sender || '';
    if (id) item.dataset.id = id;
    if (unread) {
      item.classList.add('unread');
      item.dataset.unread = 'true';
      const badge = document.createElement('span');
      badge.className = 'badge unread';
      badge.textContent = 'unread';
      item.querySelector('.meta').append(badge);
      item.addEventListener('click', () => markRead(item), { once: true });
    }
    append(item);
    return item;
  }

  function addOutgoing({ to, body }) {
    const item = messageItem({ direction: 'out', who: 'you', to, body, time: new Date() });
    item.dataset.sender = state.me;
    item.dataset.state = 'sending';
    append(item);
    return item;
  }

  function messageItem({ direction, who, to, body, time }) {
    const li = document.createElement('li');
    li.className = `message ${direction}`;
    li.dataset.direction = direction;
    const meta = document.createElement('div');
    meta.className = 'meta';
    const whoEl = document.createElement('span');
    whoEl.className = 'who';
    whoEl.textContent = who;
    const toEl = document.createElement('span');
    toEl.className = 'to';
    toEl.textContent = `→ ${to}`;
    const timeEl = document.createElement('time');
    timeEl.dateTime = time.toISOString();
    timeEl.textContent = time.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    meta.append(whoEl, toEl, timeEl);
    if (direction === 'out') {
      const stateEl = document.createElement('span');
      stateEl.className = 'state';
      stateEl.textContent = '…';
      stateEl.title = 'sending';
      meta.append(stateEl);
    }
    const bodyEl = document.createElement('div');
    bodyEl.className = 'body';
    bodyEl.textContent = body;
    li.append(meta, bodyEl);
    return li;
  }

  function append(item) {
    const list = $('messages');
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.append(item);
    $('empty').hidden = true;
    if (atBottom || item.dataset.direction === 'out') list.scrollTop = list.scrollHeight;
    updateUnread();
  }

  function markRead(item) {
    item.classList.remove('unread');
    delete item.dataset.unread;
    const badge = item.querySelector('.badge.unread');
    if (badge) badge.remove();
    updateUnread();
  }

  function updateUnread() {
    const count = document.querySelectorAll('#messages .message.unread').length;
    $('unread-summary').hidden = count === 0;
    $('unread-summary').textContent = `${count} unread`;
    $('mark-read').hidden = count === 0;
    $('empty').hidden = $('messages').children.length > 0;
    document.title = count ? `(${count}) stompbox · chat` : 'stompbox · chat';
  }

  function setStatus(value) {
    const el = $('status');
    el.dataset.state = value;
    el.textContent = value;
    el.className = `pill ${value === 'online' ? 'pill-on' : value === 'connecting' ? 'pill-wait' : 'pill-off'}`;
  }

  function showError(id, text) {
    const el = $(id);
    el.textContent = text;
    el.hidden = !text;
  }

  // ---- wiring -------------------------------------------------------------------

  $('login-form').addEventListener('submit', login);
  $('logout-button').addEventListener('click', () => void logout());
  $('compose').addEventListener('submit', sendMessage);
  $('topic-form').addEventListener('submit', joinTopic);
  $('mark-read').addEventListener('click', () => document.querySelectorAll('#messages .message.unread').forEach(markRead));
  void restore();
})();
