// The live dashboard: signs in with the OAuth2 password grant, follows the WebSocket channel (reconnecting with
// `since` so nothing is missed), counts item events, and starts imports whose progress arrives as `job.updated` events.
// Plain browser JavaScript, no build step: copy it as the start of your own dashboard.

const FEED_LENGTH = 100
const FIRST_RETRY_MS = 1000
const LAST_RETRY_MS = 15000
const ERRORS_SHOWN = 5
/** The server closes with this code when the token expires or its login ends: refresh, then reconnect. */
const POLICY_VIOLATION = 1008

const $ = (id) => document.getElementById(id)

const state = {
  /** The token response of the sign-in, then of each refresh. */
  tokens: null,
  /** GET /api/v1/users/me: its id names our private topic. */
  user: null,
  socket: null,
  /** The id of the last event received: reconnects ask for what came after it. */
  lastEventId: null,
  retryDelay: FIRST_RETRY_MS,
  reconnects: 0,
  counts: { 'item.created': 0, 'item.updated': 0, 'item.deleted': 0 },
  /** The newest state of each job seen in `job.updated` events, and the id of the import shown. */
  jobs: new Map(),
  shownJob: null
}

// Auth

async function requestToken (parameters) {
  const response = await fetch('/api/v1/auth/token', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(parameters)
  })
  const body = await response.json()
  if (!response.ok) throw new Error(body.error_description ?? 'The sign-in failed')
  return body
}

async function refreshTokens () {
  state.tokens = await requestToken({ grant_type: 'refresh_token', refresh_token: state.tokens.refresh_token })
}

/** fetch() with the access token; on a 401 the tokens are refreshed once and the request sent again. */
async function api (path, init = {}) {
  const send = () => fetch(path, { ...init, headers: { ...init.headers, authorization: `Bearer ${state.tokens.access_token}` } })
  const response = await send()
  if (response.status !== 401) return response
  await refreshTokens()
  return await send()
}

// The channel

function setConnection (connection) {
  $('connection').dataset.state = connection
  $('connection').textContent = connection
}

function connect () {
  setConnection(state.reconnects === 0 ? 'connecting' : 'reconnecting')
  const url = new URL('/api/v1/ws', window.location.href)
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
  // Browsers cannot set headers on a WebSocket: the token travels as the `bearer, <token>` subprotocol pair.
  const socket = new WebSocket(url, ['bearer', state.tokens.access_token])
  state.socket = socket
  socket.addEventListener('open', () => subscribe(socket))
  socket.addEventListener('message', (message) => receive(socket, JSON.parse(message.data)))
  socket.addEventListener('close', (close) => closed(socket, close.code))
}

function subscribe (socket) {
  const since = state.lastEventId === null ? {} : { since: state.lastEventId }
  socket.send(JSON.stringify({ type: 'subscribe', topics: ['items', `user:${state.user.id}`], ...since }))
}

function receive (socket, message) {
  if (message.type === 'subscribed') {
    setConnection('open')
    state.retryDelay = FIRST_RETRY_MS
  } else if (message.type === 'event') {
    onEvent(message)
  } else if (message.type === 'error' && message.code === 'resync_required') {
    // Gone too long: what happened meanwhile is no longer kept. Follow on from now.
    addToFeed('–', 'resync', 'events were missed while disconnected')
    state.lastEventId = null
    subscribe(socket)
  } else if (message.type === 'error') {
    addToFeed('–', message.code, message.message)
  }
}

function closed (socket, code) {
  if (state.socket !== socket) return
  state.socket = null
  if (state.tokens === null) return setConnection('closed')
  state.reconnects++
  $('reconnects').textContent = String(state.reconnects)
  setConnection('reconnecting')
  if (code === POLICY_VIOLATION) {
    refreshTokens().then(connect, () => signOut('Your login has ended: sign in again'))
    return
  }
  const delay = state.retryDelay
  state.retryDelay = Math.min(delay * 2, LAST_RETRY_MS)
  setTimeout(() => { if (state.tokens !== null) connect() }, delay)
}

// Events

function describe (message) {
  const { name, data } = message
  if (name === 'item.created' || name === 'item.updated') return `${data.name} (${data.price})`
  if (name === 'item.deleted') return data.id
  if (name === 'job.updated') return `import ${data.status} ${Math.round(data.progress * 100)}%`
  return ''
}

function onEvent (message) {
  state.lastEventId = message.id
  $('last-event-id').textContent = message.id
  if (message.name in state.counts) {
    state.counts[message.name]++
    $(`count-${message.name.split('.')[1]}`).textContent = String(state.counts[message.name])
  }
  if (message.name === 'job.updated') {
    state.jobs.set(message.data.id, message.data)
    if (message.data.id === state.shownJob) showJob(message.data)
  }
  addToFeed(message.id, message.name, describe(message))
}

function addToFeed (id, name, text) {
  const item = document.createElement('li')
  const label = document.createElement('code')
  label.textContent = `#${id} ${name}`
  item.append(label, ` ${text}`)
  const feed = $('feed')
  feed.prepend(item)
  while (feed.children.length > FEED_LENGTH) feed.lastElementChild.remove()
}

// Imports

function showJob (job) {
  $('job').hidden = false
  $('job-progress').value = job.progress
  const result = job.result
  if (job.status === 'succeeded') $('job-status').textContent = `Succeeded: ${result.created} created, ${result.failed} failed`
  else if (job.status === 'failed') $('job-status').textContent = `Failed: ${job.error}`
  else $('job-status').textContent = `${job.status} ${Math.round(job.progress * 100)}%`
  const errors = $('job-errors')
  errors.replaceChildren(...(result?.errors ?? []).slice(0, ERRORS_SHOWN).map((error) => {
    const item = document.createElement('li')
    item.textContent = `line ${error.line}: ${error.errors.map((issue) => `${issue.path} ${issue.message}`).join('; ')}`
    return item
  }))
}

async function startImport (event) {
  event.preventDefault()
  const form = new FormData()
  form.append('file', $('import-file').files[0])
  const response = await api('/api/v1/items/import', { method: 'POST', body: form })
  const body = await response.json()
  if (!response.ok) {
    $('job').hidden = false
    $('job-status').textContent = body.detail
    return
  }
  state.shownJob = body.id
  // Its first events may have come before this answer: show the newest state known.
  showJob(state.jobs.get(body.id) ?? body)
}

// Signing in and out

async function signIn (event) {
  event.preventDefault()
  $('login-error').textContent = ''
  try {
    state.tokens = await requestToken({ grant_type: 'password', username: $('email').value, password: $('password').value })
    state.user = await (await api('/api/v1/users/me')).json()
  } catch (error) {
    state.tokens = null
    $('login-error').textContent = error.message
    return
  }
  $('who').textContent = state.user.email
  $('sign-in').hidden = true
  $('live').hidden = false
  connect()
}

function signOut (reason = '') {
  const tokens = state.tokens
  state.tokens = null
  state.socket?.close(1000, 'Signed out')
  if (tokens !== null) {
    fetch('/api/v1/auth/revoke', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: tokens.refresh_token }) })
  }
  setConnection('closed')
  $('live').hidden = true
  $('sign-in').hidden = false
  $('login-error').textContent = reason
}

$('login').addEventListener('submit', signIn)
$('logout').addEventListener('click', () => signOut())
$('import').addEventListener('submit', startImport)
