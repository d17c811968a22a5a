// Hubbub browser client: join a world, publish the microphone, hear forwarded voices spatially (a Web
// Audio PannerNode per slot, placed at the avatar the slot carries) plus the server's mixed bed, walk
// around a top-down map. Plain ES module, no build step. Protocol: docs/protocol.md.

import { encode, decode } from './msgpack.js';

const $ = (id) => document.getElementById(id);
const POSE_HZ = 20;            // we send our pose at most this often on the state channel
const LEVEL_WINDOW_MS = 1500;  // levels report the loudest 50 ms block of this window (the fake mic beeps)
const DISTANCE_MODELS = { inverse: 'inverse', inverse_clamped: 'inverse', linear: 'linear',
  linear_clamped: 'linear', exponential: 'exponential', exponential_clamped: 'exponential' };

const state = {
  status: 'idle', error: null, pid: null, name: '', world: null,
  pose: { p: [0, 0, 0], q: [0, 0, 0, 1] }, yaw: 0,
  avatars: new Map(),            // pid -> {id, name, identity, p, q, audio}
  slots: { audio: [], video: [], flat: [] }, mids: null,
  speakers: new Map(),           // pid -> dBov
  muted: false, stats: {}, corrected: 0, errors: [],
};
let ws = null, pc = null, control = null, stateChannel = null, audioCtx = null, master = null;
let mic = null, poseSeq = 0, lastPoseSent = 0, poseDirty = false, walk = null;
const slotAudio = [];            // index -> {panner, gain, raw, heard, el, history}
let mixed = null;                // {analyser, el, history}
const keys = new Set();

// ------------------------------------------------------------------ maths

function quatFromYaw(yaw) { return [0, Math.sin(yaw / 2), 0, Math.cos(yaw / 2)]; }
function yawFromQuat(q) { return 2 * Math.atan2(q[1], q[3]); }  // rotation about +Y (ignores tilt)
function forwardOf(q) {  // -Z rotated by q
  const [x, y, z, w] = q;
  return [-(2 * (x * z + w * y)), -(2 * (y * z - w * x)), -(1 - 2 * (x * x + y * y))];
}
function upOf(q) { const [x, y, z, w] = q; return [2 * (x * y - w * z), 1 - 2 * (x * x + z * z), 2 * (y * z + w * x)]; }
function dist(a, b) { return Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]); }

export function decodePoses(msg) {
  // ids uint32 LE, positions int32 LE millimetres ×3, rotations int16 LE ×4 / 32767.
  const n = msg.ids.byteLength / 4;
  const ids = new DataView(msg.ids.buffer, msg.ids.byteOffset, msg.ids.byteLength);
  const pos = new DataView(msg.pos.buffer, msg.pos.byteOffset, msg.pos.byteLength);
  const rot = new DataView(msg.rot.buffer, msg.rot.byteOffset, msg.rot.byteLength);
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push({
      id: ids.getUint32(4 * i, true),
      p: [0, 1, 2].map((k) => pos.getInt32(4 * (3 * i + k), true) / 1000),
      q: [0, 1, 2, 3].map((k) => rot.getInt16(2 * (4 * i + k), true) / 32767),
    });
  }
  return out;
}

// ------------------------------------------------------------------ signaling

function send(msg) {  // reliable: control channel when open, else the WebSocket
  const frame = encode(msg);
  if (control && control.readyState === 'open') control.send(frame);
  else if (ws && ws.readyState === WebSocket.OPEN) ws.send(frame);
}

async function fetchToken(name, world) {
  const r = await fetch(`/dev/token?world=${encodeURIComponent(world)}&name=${encodeURIComponent(name)}`);
  if (!r.ok) throw new Error((await r.json().catch(() => ({}))).error || `no anonymous tokens (HTTP ${r.status}): paste a token`);
  return (await r.json()).token;
}

export async function join({ name, world, token }) {
  state.status = 'joining'; state.error = null; render();
  try {
    if (!token) token = await fetchToken(name, world);
    audioCtx = new AudioContext();
    master = audioCtx.createGain();
    master.connect(audioCtx.destination);
    try {
      mic = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      mic = null;  // listen-only when there is no microphone or permission
      state.errors.push(`microphone: ${e.message}`);
    }
    ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/rtc`);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => ws.send(encode({ t: 'join', v: 1, token, transport: 'webrtc' }));
    ws.onmessage = (ev) => handle(typeof ev.data === 'string' ? JSON.parse(ev.data) : decode(ev.data));
    ws.onclose = (ev) => {
      if (state.status !== 'left') { state.status = 'disconnected'; state.error = state.error || `connection closed (${ev.code} ${ev.reason})`; }
      render();
    };
  } catch (e) {
    state.status = 'error'; state.error = e.message; render();
  }
}

async function handle(msg) {
  switch (msg.t) {
    case 'welcome': onWelcome(msg); break;
    case 'offer': await onOffer(msg); break;
    case 'ice':
      if (pc && msg.candidate) await pc.addIceCandidate({ candidate: msg.candidate, sdpMid: msg.sdpMid, sdpMLineIndex: msg.sdpMLineIndex }).catch(() => {});
      break;
    case 'enter':
      for (const p of msg.participants) state.avatars.set(p.id, { id: p.id, name: p.name, identity: p.identity, p: p.p || [0, 0, 0], q: p.q || [0, 0, 0, 1], audio: !!p.audio });
      break;
    case 'exit':
      for (const id of msg.ids) { state.avatars.delete(id); state.speakers.delete(id); }
      break;
    case 'poses':
      for (const { id, p, q } of decodePoses(msg)) {
        const a = state.avatars.get(id);
        if (a) { a.p = p; a.q = q; }
      }
      break;
    case 'slots': {
      const before = state.slots.audio;
      state.slots = { audio: msg.audio || [], video: msg.video || [], flat: msg.flat || [] };
      // A re-pointed slot carries a new avatar: forget the previous one's recent levels.
      state.slots.audio.forEach((pid, i) => {
        const s = slotAudio[i];
        if (s && before[i] !== pid) { s.history = []; s.heardHistory = []; s.rawLevel = 0; s.heardLevel = 0; }
      });
      break;
    }
    case 'speakers':
      state.speakers = new Map(msg.ids.map((id, i) => [id, msg.levels[i]]));
      break;
    case 'corrected':
      state.pose = { p: msg.p, q: msg.q }; state.yaw = yawFromQuat(msg.q); state.corrected++;
      if (walk) { walk.resolve(false); walk = null; }  // the server stopped us: moveTo resolves false
      break;
    case 'error':
      state.errors.push(`${msg.code}: ${msg.message}`);
      if (state.status === 'joining') { state.status = 'error'; state.error = msg.message; }
      break;
    case 'bye': state.error = `server: ${msg.reason}`; break;
    case 'data': state.lastData = { from: msg.from, topic: msg.topic, size: msg.payload.length }; break;
    default: break;
  }
  render();
}

function onWelcome(msg) {
  state.pid = msg.participant_id; state.name = msg.name; state.world = msg.world;
  state.iceServers = msg.ice_servers || [];
  if (msg.spawn) { state.pose = { p: msg.spawn.p, q: msg.spawn.q }; state.yaw = yawFromQuat(msg.spawn.q); }
}

async function onOffer(msg) {
  state.mids = msg.slots;
  if (!pc) {
    pc = new RTCPeerConnection({ iceServers: state.iceServers.map((s) => ({ urls: s.urls, username: s.username, credential: s.credential })) });
    pc.ondatachannel = (ev) => {
      const ch = ev.channel;
      ch.binaryType = 'arraybuffer';
      if (ch.label === 'control') control = ch;
      if (ch.label === 'state') stateChannel = ch;
      ch.onmessage = (e) => handle(typeof e.data === 'string' ? JSON.parse(e.data) : decode(e.data));
      ch.onopen = () => { if (ch.label === 'state') poseDirty = true; };
    };
    pc.ontrack = (ev) => onTrack(ev.transceiver.mid, ev.track);
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'connected') state.status = 'joined';
      if (pc.connectionState === 'failed') { state.status = 'disconnected'; state.error = 'media connection failed'; }
      render();
    };
  }
  await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
  for (const t of pc.getTransceivers()) {
    if (t.mid === msg.slots.publish_audio) {
      if (mic) { await t.sender.replaceTrack(mic.getAudioTracks()[0]); t.direction = 'sendonly'; }
      else t.direction = 'inactive';
    } else if (t.mid === msg.slots.publish_video) t.direction = 'inactive';
  }
  await pc.setLocalDescription(await pc.createAnswer());
  // The server takes the whole answer at once: wait for ICE gathering (host candidates are quick).
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const done = () => { if (pc.iceGatheringState === 'complete') resolve(); };
    pc.addEventListener('icegatheringstatechange', done);
    setTimeout(resolve, 2000);
  });
  ws.send(encode({ t: 'answer', sdp: pc.localDescription.sdp }));
}

// ------------------------------------------------------------------ audio

function attach(track) {
  // Chrome only pulls a remote WebRTC stream through Web Audio while a media element plays it.
  const stream = new MediaStream([track]);
  const el = new Audio();
  el.muted = true; el.srcObject = stream; el.play().catch(() => {});
  document.body.appendChild(el);
  return { stream, el, source: audioCtx.createMediaStreamSource(stream) };
}

function makeAnalyser() { const a = audioCtx.createAnalyser(); a.fftSize = 2048; return a; }

function onTrack(mid, track) {
  if (track.kind !== 'audio' || !state.mids) return;
  audioCtx.resume();
  if (mid === state.mids.mixed) {
    const { el, source } = attach(track);
    const analyser = makeAnalyser();
    source.connect(analyser);
    source.connect(master);
    mixed = { el, analyser, history: [] };
    return;
  }
  const index = (state.mids.audio || []).indexOf(mid);
  if (index < 0) return;
  const { el, source } = attach(track);
  const a = state.world.audio || {};
  const panner = new PannerNode(audioCtx, {
    panningModel: a.pan_law === 'hrtf' ? 'HRTF' : 'equalpower',
    distanceModel: DISTANCE_MODELS[a.distance_model] || 'inverse',
    refDistance: a.reference_distance ?? 1,
    rolloffFactor: a.rolloff ?? 1,
    maxDistance: a.max_distance ?? 10000,
  });
  const gain = audioCtx.createGain();  // 0 while the slot is idle
  const raw = makeAnalyser(), heard = makeAnalyser();
  source.connect(raw);
  source.connect(gain).connect(panner).connect(heard);
  panner.connect(master);
  slotAudio[index] = { panner, gain, raw, heard, el, history: [] };
}

function updateAudioScene() {
  if (!audioCtx) return;
  const L = audioCtx.listener, t = audioCtx.currentTime;
  const [x, y, z] = state.pose.p, f = forwardOf(state.pose.q), u = upOf(state.pose.q);
  if (L.positionX) {
    L.positionX.setValueAtTime(x, t); L.positionY.setValueAtTime(y, t); L.positionZ.setValueAtTime(z, t);
    L.forwardX.setValueAtTime(f[0], t); L.forwardY.setValueAtTime(f[1], t); L.forwardZ.setValueAtTime(f[2], t);
    L.upX.setValueAtTime(u[0], t); L.upY.setValueAtTime(u[1], t); L.upZ.setValueAtTime(u[2], t);
  } else { L.setPosition(x, y, z); L.setOrientation(...f, ...u); }
  slotAudio.forEach((s, i) => {
    if (!s) return;
    const pid = state.slots.audio[i];
    const avatar = pid == null ? null : state.avatars.get(pid);
    const flat = !!state.slots.flat[i];
    s.gain.gain.setValueAtTime(avatar || (pid != null && flat) ? 1 : 0, t);
    // Flat (stage / meeting) voices sit on the listener: no attenuation, centred.
    const p = flat || !avatar ? state.pose.p : avatar.p;
    s.panner.positionX.setValueAtTime(p[0], t); s.panner.positionY.setValueAtTime(p[1], t); s.panner.positionZ.setValueAtTime(p[2], t);
  });
}

const buf = new Float32Array(2048);
function rmsOf(analyser) {
  analyser.getFloatTimeDomainData(buf);
  let s = 0;
  for (let i = 0; i < buf.length; i++) s += buf[i] * buf[i];
  return Math.sqrt(s / buf.length);
}
function db(x) { return x > 1e-6 ? 20 * Math.log10(x) : -120; }
function windowMax(history, value, now) {
  history.push([now, value]);
  while (history.length && history[0][0] < now - LEVEL_WINDOW_MS) history.shift();
  return Math.max(...history.map((h) => h[1]));
}
function sampleLevels() {
  const now = performance.now();
  slotAudio.forEach((s) => {
    if (!s) return;
    s.rawLevel = windowMax(s.history, rmsOf(s.raw), now);
    s.heardHistory = s.heardHistory || [];
    s.heardLevel = windowMax(s.heardHistory, rmsOf(s.heard), now);
  });
  if (mixed) mixed.level = windowMax(mixed.history, rmsOf(mixed.analyser), now);
}

// ------------------------------------------------------------------ movement

function sendPose(now) {
  if (!stateChannel || stateChannel.readyState !== 'open') return;
  if (stateChannel.bufferedAmount > 16384) return;  // stale poses are dropped, never queued
  poseSeq = (poseSeq + 1) >>> 0;
  stateChannel.send(encode({ t: 'pose', p: state.pose.p, q: state.pose.q, seq: poseSeq }));
  lastPoseSent = now; poseDirty = false;
}

function maxSpeed() { return Math.min(4, 0.8 * ((state.world && state.world.max_speed) || 5)); }

function step(dt) {
  let [x, y, z] = state.pose.p;
  let moved = false;
  const speed = maxSpeed();
  if (walk) {
    const [tx, tz] = walk.target;
    const dx = tx - x, dz = tz - z, d = Math.hypot(dx, dz), s = walk.speed * dt;
    if (d <= s) { x = tx; z = tz; walk.resolve(true); walk = null; } else { x += (dx / d) * s; z += (dz / d) * s; }
    moved = true;
  }
  let fwd = 0, side = 0, turn = 0;
  if (keys.has('KeyW') || keys.has('ArrowUp')) fwd += 1;
  if (keys.has('KeyS') || keys.has('ArrowDown')) fwd -= 1;
  if (keys.has('KeyA')) side -= 1;
  if (keys.has('KeyD')) side += 1;
  if (keys.has('ArrowLeft')) turn += 1;
  if (keys.has('ArrowRight')) turn -= 1;
  if (fwd || side || turn) {
    state.yaw += turn * 2.0 * dt;
    const f = forwardOf(quatFromYaw(state.yaw));  // walking direction on the ground
    const r = [-f[2], 0, f[0]];                   // right = forward × up
    x += (f[0] * fwd + r[0] * side) * speed * dt;
    z += (f[2] * fwd + r[2] * side) * speed * dt;
    moved = true;
  }
  if (moved) {
    const b = state.world && state.world.bounds;
    if (b) { x = Math.min(Math.max(x, b.min[0]), b.max[0]); z = Math.min(Math.max(z, b.min[2]), b.max[2]); }
    state.pose = { p: [x, y, z], q: quatFromYaw(state.yaw) };
    poseDirty = true;
  }
}

function moveTo(x, z, speed) {
  // Walk (not teleport: the server corrects jumps faster than max_speed) and resolve on arrival.
  if (walk) walk.resolve(false);
  return new Promise((resolve) => { walk = { target: [x, z], speed: Math.min(speed || maxSpeed(), maxSpeed()), resolve }; });
}

// ------------------------------------------------------------------ stats

async function updateStats() {
  if (!pc) return;
  const report = await pc.getStats();
  let rtt = null, lost = 0, recv = 0, bytesIn = 0, bytesOut = 0;
  report.forEach((s) => {
    if (s.type === 'candidate-pair' && s.nominated && s.currentRoundTripTime != null) rtt = s.currentRoundTripTime;
    if (s.type === 'inbound-rtp' && s.kind === 'audio') { lost += s.packetsLost || 0; recv += s.packetsReceived || 0; bytesIn += s.bytesReceived || 0; }
    if (s.type === 'outbound-rtp' && s.kind === 'audio') bytesOut += s.bytesSent || 0;
  });
  const now = performance.now(), prev = state.stats;
  const secs = prev.t ? (now - prev.t) / 1000 : 0;
  const hearing = (state.world && state.world.interest && state.world.interest.hearing_radius) || 0;
  state.stats = {
    t: now, rtt_ms: rtt == null ? null : Math.round(rtt * 1000),
    loss_pct: recv + lost ? (100 * lost) / (recv + lost) : 0,
    kbps_in: secs ? (8 * (bytesIn - prev.bytesIn)) / secs / 1000 : 0,
    kbps_out: secs ? (8 * (bytesOut - prev.bytesOut)) / secs / 1000 : 0,
    bytesIn, bytesOut, packets_in: recv,
    forwarded: state.slots.audio.filter((p) => p != null).length,
    audible: [...state.avatars.values()].filter((a) => a.audio && dist(a.p, state.pose.p) <= hearing).length,
  };
}

// ------------------------------------------------------------------ map

function drawShape(ctx, shape, toPx, scale) {
  ctx.beginPath();
  if (shape.type === 'box') {
    const [x0, y0] = toPx(shape.min[0], shape.min[2]), [x1, y1] = toPx(shape.max[0], shape.max[2]);
    ctx.rect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
  } else if (shape.type === 'cylinder' || shape.center) {
    const [cx, cy] = toPx(shape.center[0], shape.center[1]);
    ctx.arc(cx, cy, shape.radius * scale, 0, 2 * Math.PI);
  } else if (shape.points) {
    shape.points.forEach(([px, pz], i) => { const [a, b] = toPx(px, pz); if (i) ctx.lineTo(a, b); else ctx.moveTo(a, b); });
    ctx.closePath();
  }
}

function drawMap() {
  const canvas = $('map');
  if (!canvas || !state.world) return;
  const ctx = canvas.getContext('2d');
  const W = canvas.width, H = canvas.height;
  const view = Number($('zoom').value) || 80;       // metres shown across
  const scale = Math.min(W, H) / view;
  const [cx, , cz] = state.pose.p;
  const toPx = (x, z) => [W / 2 + (x - cx) * scale, H / 2 + (z - cz) * scale];  // +X right, +Z down
  ctx.fillStyle = '#10141a'; ctx.fillRect(0, 0, W, H);
  const b = state.world.bounds;
  if (b) { ctx.strokeStyle = '#445'; drawShape(ctx, { type: 'box', min: b.min, max: b.max }, toPx, scale); ctx.stroke(); }
  ctx.strokeStyle = '#222a33'; ctx.lineWidth = 1;
  for (let g = Math.floor((cx - view) / 5) * 5; g < cx + view; g += 5) { const [px] = toPx(g, 0); ctx.beginPath(); ctx.moveTo(px, 0); ctx.lineTo(px, H); ctx.stroke(); }
  for (let g = Math.floor((cz - view) / 5) * 5; g < cz + view; g += 5) { const [, py] = toPx(0, g); ctx.beginPath(); ctx.moveTo(0, py); ctx.lineTo(W, py); ctx.stroke(); }
  const colours = { stage: 'rgba(255,190,60,', private: 'rgba(200,80,200,', meeting: 'rgba(80,200,160,' };
  for (const zone of state.world.zones || []) {
    const c = colours[zone.kind] || 'rgba(150,150,150,';
    ctx.fillStyle = `${c}0.15)`; ctx.strokeStyle = `${c}0.8)`;
    drawShape(ctx, zone.shape, toPx, scale); ctx.fill(); ctx.stroke();
    if (zone.audience) { ctx.setLineDash([4, 4]); drawShape(ctx, zone.audience, toPx, scale); ctx.stroke(); ctx.setLineDash([]); }
    const s = zone.shape, at = s.type === 'box' ? [s.min[0], s.min[2]] : s.center || s.points[0];
    const [lx, ly] = toPx(at[0], at[1]);
    ctx.fillStyle = `${c}1)`; ctx.font = '12px sans-serif'; ctx.fillText(`${zone.name} (${zone.kind})`, lx + 3, ly + 14);
  }
  const interest = state.world.interest || {};
  const [mx, my] = toPx(cx, cz);
  for (const [r, colour] of [[interest.forward_radius, '#2d6a4f'], [interest.hearing_radius, '#1d3557']]) {
    if (!r) continue;
    ctx.strokeStyle = colour; ctx.setLineDash([6, 6]); ctx.beginPath(); ctx.arc(mx, my, r * scale, 0, 2 * Math.PI); ctx.stroke(); ctx.setLineDash([]);
  }
  const forwarded = new Set(state.slots.audio.filter((p) => p != null));
  const drawAvatar = (p, q, name, colour, speaking, below = false) => {
    const [px, py] = toPx(p[0], p[2]);
    if (speaking) { ctx.strokeStyle = '#ffd166'; ctx.lineWidth = 3; ctx.beginPath(); ctx.arc(px, py, 11, 0, 2 * Math.PI); ctx.stroke(); ctx.lineWidth = 1; }
    ctx.fillStyle = colour; ctx.beginPath(); ctx.arc(px, py, 6, 0, 2 * Math.PI); ctx.fill();
    const f = forwardOf(q);
    ctx.strokeStyle = colour; ctx.beginPath(); ctx.moveTo(px, py); ctx.lineTo(px + f[0] * 14, py + f[2] * 14); ctx.stroke();
    ctx.fillStyle = '#dde'; ctx.font = '12px sans-serif'; ctx.fillText(name, px + 9, below ? py + 18 : py - 8);
  };
  for (const a of state.avatars.values()) drawAvatar(a.p, a.q, a.name, forwarded.has(a.id) ? '#52b788' : '#8d99ae', state.speakers.has(a.id));
  drawAvatar(state.pose.p, state.pose.q, `${state.name} (you)`, '#4cc9f0', state.speakers.has(state.pid), true);
}

// ------------------------------------------------------------------ UI

function render() {
  const joined = state.status === 'joined' || state.status === 'joining';
  $('join-form').hidden = joined && !state.error;
  $('status').textContent = state.error ? `${state.status}: ${state.error}` : state.status;
  $('mute').textContent = state.muted ? 'Unmute' : 'Mute';
  const s = state.stats;
  $('stats').textContent = [
    `you: #${state.pid ?? '-'} ${state.name} at ${state.pose.p.map((v) => v.toFixed(1)).join(', ')}`,
    `RTT ${s.rtt_ms ?? '-'} ms   loss ${(s.loss_pct ?? 0).toFixed(1)} %`,
    `in ${(s.kbps_in ?? 0).toFixed(0)} kb/s   out ${(s.kbps_out ?? 0).toFixed(0)} kb/s`,
    `avatars seen ${state.avatars.size}   audible ${s.audible ?? 0}   forwarded ${s.forwarded ?? 0}`,
    `mixed bed ${db(mixed ? mixed.level || 0 : 0).toFixed(0)} dBFS`,
  ].join('\n');
}

function frame(now) {
  const dt = Math.min(0.1, (now - (frame.last || now)) / 1000);
  frame.last = now;
  step(dt);
  if (poseDirty && now - lastPoseSent >= 1000 / POSE_HZ) sendPose(now);
  else if (now - lastPoseSent > 1000) sendPose(now);  // keep-alive for late joiners' interest
  updateAudioScene();
  drawMap();
  requestAnimationFrame(frame);
}

function setup() {
  const params = new URLSearchParams(location.search);
  $('name').value = params.get('name') || `guest${Math.floor(Math.random() * 1000)}`;
  $('world').value = params.get('world') || 'plaza';
  $('join-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    join({ name: $('name').value, world: $('world').value, token: $('token').value.trim() });
  });
  $('mute').addEventListener('click', () => {
    state.muted = !state.muted;
    if (mic) mic.getAudioTracks().forEach((t) => { t.enabled = !state.muted; });
    send({ t: 'mute', audio: state.muted });
    render();
  });
  document.addEventListener('keydown', (e) => { if (e.target.tagName !== 'INPUT' && e.target.tagName !== 'TEXTAREA') { keys.add(e.code); if (e.code.startsWith('Arrow')) e.preventDefault(); } });
  document.addEventListener('keyup', (e) => keys.delete(e.code));
  document.addEventListener('click', () => audioCtx && audioCtx.resume());
  setInterval(sampleLevels, 50);
  setInterval(() => { updateStats().then(render); }, 1000);
  requestAnimationFrame(frame);
  if (params.get('autojoin')) join({ name: $('name').value, world: $('world').value, token: params.get('token') || '' });
}

// A small hook for tests and curious users (window.hubbub in the console).
window.hubbub = {
  state,
  join,
  moveTo,
  setMuted: (m) => { if (state.muted !== m) $('mute').click(); },
  avatars: () => [...state.avatars.values()].map((a) => ({ id: a.id, name: a.name, x: a.p[0], y: a.p[1], z: a.p[2] })),
  // Per slot: the avatar it carries and the loudest recent level before (raw) and after (heard) the panner.
  levels: () => slotAudio.map((s, i) => (s ? { slot: i, pid: state.slots.audio[i] ?? null, flat: !!state.slots.flat[i],
    raw_db: db(s.rawLevel || 0), heard_db: db(s.heardLevel || 0) } : null)).filter(Boolean),
  mixedLevel: () => db(mixed ? mixed.level || 0 : 0),
  // What we hear of avatar `pid`: its panned slot level, or -120 if it is not forwarded to us.
  heardLevelOf: (pid) => { const l = window.hubbub.levels().find((x) => x.pid === pid); return l ? l.heard_db : -120; },
  audioState: () => (audioCtx ? audioCtx.state : 'none'),
  stats: () => state.stats,
};

setup();
