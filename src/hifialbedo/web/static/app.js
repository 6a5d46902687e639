// The page of `hifialbedo serve`: upload, progress, results, light controls.
// Everything comes from this server (the API in src/hifialbedo/web/app.py); nothing from the internet.
import { FaceViewer, normalize, srgbToLinear } from './viewer.js';

const $ = (id) => document.getElementById(id);
const HEADERS = { 'X-Hifialbedo': '1' };
const state = {
  config: null,
  files: [], // {file, url}
  job: null,
  scene: null,
  events: null,
  light: {
    base: 'estimated', // 'estimated' | an envmap name | 'none'
    strength: 1,
    directional: { on: false, direction: normalize([-0.5, 0.4, 0.75]), colour: [1, 1, 1], intensity: 1, ambient: 0.2 },
    exposure: 0,
  },
};
let viewer = null;

// The page's test hook (tests/test_web_browser.py): state, light control and relight's front view.
window.hifi = {
  ready: false,
  error: null,
  get state() { return { job: state.job, light: state.light, show: viewer && viewer.show }; },
  setLight(partial) {
    const { directional, ...rest } = partial;
    Object.assign(state.light, rest);
    if (directional) state.light.directional = { ...state.light.directional, ...directional };
    syncLightControls();
    applyLight();
  },
  renderFront(size) { return viewer.renderFront(size); },
  orbit(azimuth, elevation) { viewer.orbit(azimuth, elevation); },
  setShow(mode) { setShow(mode); },
};

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function formatBytes(n) {
  return n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1024))} KB`;
}

function message(text, kind = 'error') {
  $('messages').append(el('p', { class: `msg ${kind}`, text }));
}

function clearMessages() { $('messages').replaceChildren(); }

// --- upload ---------------------------------------------------------------------------

function addFiles(list) {
  clearMessages();
  const max = state.config ? state.config.limits.max_photos : 12;
  for (const file of list) {
    if (state.files.length >= max) {
      message(`${file.name}: at most ${max} photos per job`);
      continue;
    }
    state.files.push({ file, url: URL.createObjectURL(file) });
  }
  renderThumbs();
}

function renderThumbs() {
  const ul = $('thumbs');
  ul.replaceChildren();
  state.files.forEach((entry, i) => {
    const remove = el('button', { class: 'remove', title: 'remove', 'aria-label': `remove ${entry.file.name}`, text: '×', onclick: (ev) => {
      ev.preventDefault();
      URL.revokeObjectURL(entry.url);
      state.files.splice(i, 1);
      renderThumbs();
    } });
    const img = el('img', { src: entry.url, alt: '' });
    img.addEventListener('error', () => img.classList.add('broken'));
    ul.append(el('li', {}, img, el('span', { class: 'name', text: entry.file.name }), el('span', { class: 'size', text: formatBytes(entry.file.size) }), remove));
  });
  const total = state.files.reduce((s, e) => s + e.file.size, 0);
  const limit = state.config ? state.config.limits.max_upload_bytes : Infinity;
  $('upload-total').textContent = state.files.length ? `${state.files.length} photo(s), ${formatBytes(total)}` : '';
  const over = total > limit;
  if (over) message(`the photos are ${formatBytes(total)} together, over the limit of ${formatBytes(limit)} (hifialbedo serve --max-upload-mb)`);
  $('run').disabled = !state.files.length || over;
}

async function submit() {
  clearMessages();
  const form = new FormData();
  for (const { file } of state.files) form.append('photos', file, file.name);
  form.append('uv_size', $('uv-size').value);
  form.append('reflectance', $('reflectance').checked ? 'on' : 'off');
  $('run').disabled = true;
  let response, body;
  try {
    response = await fetch('/api/jobs', { method: 'POST', body: form, headers: HEADERS });
    body = await response.json();
  } catch (err) {
    message(`the upload failed: ${err.message}`);
    $('run').disabled = false;
    return;
  }
  for (const r of body.refused || []) message(`${r.name}: ${r.problem}`, response.ok ? 'warn' : 'error');
  if (!response.ok) {
    message(body.error || `the server answered ${response.status}`);
    $('run').disabled = false;
    return;
  }
  follow(body.job.id);
}

// --- progress -------------------------------------------------------------------------

function follow(jobId) {
  if (state.events) state.events.close();
  history.replaceState(null, '', `#job=${jobId}`);
  $('progress-card').hidden = false;
  const source = new EventSource(`/api/jobs/${jobId}/events`);
  state.events = source;
  source.addEventListener('job', (ev) => showJob(JSON.parse(ev.data)));
  source.onerror = async () => {
    // The stream ends when the job has finished (or the server went away): read the state once.
    source.close();
    try {
      const r = await fetch(`/api/jobs/${jobId}`);
      if (r.ok) showJob(await r.json());
      else $('job-state').textContent = (await r.json()).error;
    } catch (err) {
      $('job-state').textContent = 'the server is not answering';
    }
  };
}

function showJob(job) {
  const previous = state.job;
  state.job = job;
  const names = job.photos.map((p) => p.name).join(', ');
  const states = {
    queued: job.position ? `waiting: place ${job.position} in the queue (${job.running} job(s) running)` : 'waiting',
    running: `reconstructing ${names}${job.seconds ? ` (${job.seconds.toFixed(0)} s)` : ''}`,
    done: `done in ${job.seconds.toFixed(1)} s: ${names}`,
    failed: 'failed',
  };
  $('job-state').textContent = states[job.state];
  $('job-state').className = `job-state ${job.state}`;
  const ol = $('stages');
  ol.replaceChildren();
  job.stages.forEach((s, i) => {
    const current = job.state === 'running' && i === job.stages.length - 1;
    ol.append(el('li', { class: current ? 'current' : 'finished' }, el('span', { class: 'stage', text: s.name }), el('span', { class: 'secs', text: s.seconds != null ? `${s.seconds.toFixed(1)} s` : '' })));
  });
  if (job.state === 'failed') {
    message(job.error || 'the job failed');
    $('run').disabled = !state.files.length;
  }
  showWarnings(job.warnings || []);
  if (job.state === 'done' && !(previous && previous.id === job.id && previous.state === 'done')) {
    if (state.events) state.events.close();
    $('run').disabled = !state.files.length;
    loadResult(job.id);
  }
}

function showWarnings(list) {
  $('warnings-card').hidden = !list.length;
  $('warnings').replaceChildren(...list.map((w) => el('li', { text: w })));
}

// --- results --------------------------------------------------------------------------

async function loadResult(jobId) {
  window.hifi.ready = false;
  const r = await fetch(`/api/jobs/${jobId}/scene`);
  const scene = await r.json();
  if (!r.ok) { message(scene.error); return; }
  state.scene = scene;
  try {
    $('viewer-placeholder').hidden = true;
    await viewer.load(scene);
  } catch (err) {
    window.hifi.error = String(err);
    message(`the viewer could not load the result: ${err.message}`);
    return;
  }
  const select = $('photo-select');
  select.replaceChildren(...scene.views.map((v, i) => el('option', { value: String(i), text: v.name })));
  select.hidden = scene.views.length < 2;
  showPhoto(0);
  showDownloads(scene);
  for (const b of document.querySelectorAll('#show button')) {
    const needs = { specular: 'specular.png', roughness: 'roughness.png' }[b.dataset.show];
    b.disabled = !!needs && !scene.files[needs];
  }
  if (!scene.has_specular && ['specular', 'roughness'].includes(viewer.show)) setShow('relit');
  $('compare-card').hidden = false;
  applyLight();
  window.hifi.ready = true;
}

function showPhoto(index) {
  const view = state.scene.views[index];
  viewer.setView(index);
  $('photo-img').src = view.photo || view.render_view;
  $('photo-view').style.backgroundImage = $('overlay').checked && view.photo ? `url("${view.photo}")` : '';
  $('estimated-label').textContent = state.scene.views.length > 1 ? `Estimated (${view.name})` : 'Estimated';
  applyLight();
}

function showDownloads(scene) {
  $('downloads-card').hidden = false;
  $('zip').href = scene.zip;
  const links = Object.entries(scene.files).map(([name, url]) => el('a', { href: url, download: name, text: name }));
  $('file-links').replaceChildren(...links);
}

// --- light ----------------------------------------------------------------------------

function baseLight() {
  const name = state.light.base;
  if (name === 'none') return null;
  if (name === 'estimated') {
    if (!state.scene) return null;
    return state.scene.views[Number($('photo-select').value || 0)].light;
  }
  return state.config.envmaps.find((e) => e.name === name) || null;
}

function applyLight() {
  if (!viewer) return;
  viewer.setLight({ base: baseLight(), strength: state.light.strength, directional: state.light.directional, exposure: state.light.exposure });
  drawPad();
}

function setBase(name) {
  state.light.base = name;
  for (const b of document.querySelectorAll('#base-lights button')) b.classList.toggle('active', b.dataset.base === name);
  applyLight();
}

function hexToLinear(hex) {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255].map((c) => srgbToLinear(c / 255));
}

function linearToHex(rgb) {
  const enc = (c) => {
    const v = Math.min(Math.max(c, 0), 1);
    return Math.round(255 * (v <= 0.0031308 ? v * 12.92 : 1.055 * Math.pow(v, 1 / 2.4) - 0.055));
  };
  return '#' + rgb.map((c) => enc(c).toString(16).padStart(2, '0')).join('');
}

function syncLightControls() {
  const d = state.light.directional;
  $('dir-on').checked = d.on;
  $('dir-colour').value = linearToHex(d.colour);
  $('dir-intensity').value = d.intensity;
  $('dir-ambient').value = d.ambient;
  $('base-strength').value = state.light.strength;
  $('exposure').value = state.light.exposure;
  for (const b of document.querySelectorAll('#base-lights button')) b.classList.toggle('active', b.dataset.base === state.light.base);
  for (const input of document.querySelectorAll('#light-card input[type=range]')) showValue(input);
}

function showValue(input) {
  const out = input.parentElement.querySelector('output');
  if (out) out.textContent = Number(input.value).toFixed(input.step && input.step < 0.1 ? 2 : 1);
}

// The light pad: the direction the light comes from, seen from the front. The centre is a
// light from the camera (+z), the inner circle a light from the side (90 degrees), the rim
// a light from behind; up is +y (up the face), right is +x (image right).
function padToDirection(px, py, pad) {
  const r = pad.width / 2 - 8;
  const dx = (px - pad.width / 2) / r, dy = -(py - pad.height / 2) / r;
  const rho = Math.min(Math.hypot(dx, dy), 0.999);
  const theta = rho * Math.PI, phi = Math.atan2(dy, dx);
  return [Math.sin(theta) * Math.cos(phi), Math.sin(theta) * Math.sin(phi), Math.cos(theta)];
}

function directionToPad(d, pad) {
  const r = pad.width / 2 - 8;
  const theta = Math.acos(Math.max(-1, Math.min(1, d[2])));
  const phi = Math.atan2(d[1], d[0]);
  const rho = theta / Math.PI;
  return [pad.width / 2 + r * rho * Math.cos(phi), pad.height / 2 - r * rho * Math.sin(phi)];
}

function drawPad() {
  const pad = $('light-pad');
  const ctx = pad.getContext('2d');
  const w = pad.width, c = w / 2, r = w / 2 - 8;
  ctx.clearRect(0, 0, w, w);
  const grad = ctx.createRadialGradient(c, c, 0, c, c, r);
  grad.addColorStop(0, '#3b4252');
  grad.addColorStop(0.5, '#2b303b');
  grad.addColorStop(1, '#1d2027');
  ctx.fillStyle = grad;
  ctx.beginPath(); ctx.arc(c, c, r, 0, 2 * Math.PI); ctx.fill();
  ctx.strokeStyle = '#59606e';
  ctx.setLineDash([3, 3]);
  ctx.beginPath(); ctx.arc(c, c, r / 2, 0, 2 * Math.PI); ctx.stroke();
  ctx.setLineDash([]);
  ctx.beginPath(); ctx.moveTo(c - r, c); ctx.lineTo(c + r, c); ctx.moveTo(c, c - r); ctx.lineTo(c, c + r); ctx.stroke();
  ctx.fillStyle = '#8a93a6';
  ctx.font = '10px system-ui, sans-serif';
  ctx.textAlign = 'center';
  ctx.fillText('front', c, c - 4);
  ctx.fillText('side', c, c - r / 2 - 3);
  ctx.fillText('behind', c, c - r + 11);
  const d = state.light.directional;
  const [x, y] = directionToPad(d.direction, pad);
  ctx.globalAlpha = d.on ? 1 : 0.4;
  ctx.fillStyle = '#ffd36b';
  ctx.beginPath(); ctx.arc(x, y, 7, 0, 2 * Math.PI); ctx.fill();
  ctx.globalAlpha = 1;
}

function setupPad() {
  const pad = $('light-pad');
  let dragging = false;
  const move = (ev) => {
    const rect = pad.getBoundingClientRect();
    const px = (ev.clientX - rect.left) * pad.width / rect.width, py = (ev.clientY - rect.top) * pad.height / rect.height;
    state.light.directional.direction = padToDirection(px, py, pad);
    state.light.directional.on = true;
    $('dir-on').checked = true;
    applyLight();
  };
  pad.addEventListener('pointerdown', (ev) => { dragging = true; pad.setPointerCapture(ev.pointerId); move(ev); });
  pad.addEventListener('pointermove', (ev) => { if (dragging) move(ev); });
  pad.addEventListener('pointerup', () => { dragging = false; });
  pad.addEventListener('pointercancel', () => { dragging = false; });
}

function setShow(mode) {
  for (const b of document.querySelectorAll('#show button')) b.classList.toggle('active', b.dataset.show === mode);
  viewer.setShow(mode);
}

// --- start ----------------------------------------------------------------------------

async function start() {
  viewer = new FaceViewer($('viewer'), $('photo-view'));
  const r = await fetch('/api/config');
  state.config = await r.json();
  const select = $('uv-size');
  select.replaceChildren(...state.config.uv_sizes.map((s) => el('option', { value: String(s), text: `${s} px` })));
  select.value = String(state.config.default_uv_size);
  $('limits').textContent = `up to ${state.config.limits.max_photos} photos, ${formatBytes(state.config.limits.max_upload_bytes)} together`;

  const bases = $('base-lights');
  bases.append(el('button', { 'data-base': 'estimated', class: 'active', onclick: () => setBase('estimated') }, el('span', { class: 'swatch estimated' }), el('span', { id: 'estimated-label', text: 'Estimated' })));
  for (const e of state.config.envmaps) {
    bases.append(el('button', { 'data-base': e.name, onclick: () => setBase(e.name) }, el('img', { src: e.preview, alt: '' }), el('span', { text: e.label })));
  }
  bases.append(el('button', { 'data-base': 'none', onclick: () => setBase('none') }, el('span', { class: 'swatch none' }), el('span', { text: 'None' })));

  const drop = $('dropzone');
  const input = $('file-input');
  drop.addEventListener('click', () => input.click());
  drop.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); input.click(); } });
  input.addEventListener('change', () => { addFiles(input.files); input.value = ''; });
  for (const type of ['dragenter', 'dragover']) drop.addEventListener(type, (ev) => { ev.preventDefault(); drop.classList.add('over'); });
  for (const type of ['dragleave', 'drop']) drop.addEventListener(type, (ev) => { ev.preventDefault(); drop.classList.remove('over'); });
  drop.addEventListener('drop', (ev) => addFiles(ev.dataTransfer.files));
  $('run').addEventListener('click', submit);

  for (const b of document.querySelectorAll('#show button')) b.addEventListener('click', () => setShow(b.dataset.show));
  $('detail').addEventListener('change', () => viewer.setDetail($('detail').checked));
  $('reset-view').addEventListener('click', () => viewer.frontView());
  $('photo-select').addEventListener('change', () => showPhoto(Number($('photo-select').value)));
  $('overlay').addEventListener('change', () => showPhoto(Number($('photo-select').value || 0)));

  setupPad();
  $('dir-on').addEventListener('change', () => { state.light.directional.on = $('dir-on').checked; applyLight(); });
  $('dir-colour').addEventListener('input', () => { state.light.directional.colour = hexToLinear($('dir-colour').value); applyLight(); });
  const sliders = {
    'dir-intensity': (v) => { state.light.directional.intensity = v; },
    'dir-ambient': (v) => { state.light.directional.ambient = v; },
    'base-strength': (v) => { state.light.strength = v; },
    exposure: (v) => { state.light.exposure = v; },
  };
  for (const [id, set] of Object.entries(sliders)) {
    $(id).addEventListener('input', () => { set(Number($(id).value)); showValue($(id)); applyLight(); });
  }
  $('light-reset').addEventListener('click', () => {
    state.light.directional.on = false;
    state.light.strength = 1;
    state.light.exposure = 0;
    setBase('estimated');
    syncLightControls();
    applyLight();
  });
  syncLightControls();
  drawPad();

  const match = location.hash.match(/job=([0-9a-f]{32})/);
  if (match) follow(match[1]);
}

start().catch((err) => {
  window.hifi.error = String(err);
  message(`the page could not start: ${err.message}`);
});
