// The page: loads the engine and the shipped student (or a dropped-in
// model), generates with the chosen settings, draws the piano roll and plays
// the notes as they come, and offers the MIDI file.
import { Engine, NOTE_ON, TEMPO } from './kantor-engine.js';
import { midiFile } from './midi-file.js';
import { Player, midiOutputs } from './player.js';
import { Roll } from './roll.js';

const CHUNK = 32; // tokens between two looks at the page
const MAX_TOKENS = 50000; // a bar count the model never reaches stops here

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const roll = new Roll($('roll'));
const player = new Player();
let engine = null;
let run = 0; // the current generation; a new one or Stop ends the old
let downloadUrl = null;

function setState(state, text) {
  document.body.dataset.state = state;
  if (text !== undefined) $('status').textContent = text;
}

function fail(error) {
  console.error(error);
  setState('error', `Error: ${error.message ?? error}`);
  $('generate').disabled = !engine?.model;
  $('stop').disabled = true;
}

for (const [param, id] of [['seed', 'seed'], ['temperature', 'temperature'], ['topk', 'top-k'],
  ['topp', 'top-p'], ['bars', 'bars']]) {
  if (params.has(param)) $(id).value = params.get(param);
}

function settings() {
  const seed = $('seed').value.trim();
  if (!/^\d+$/.test(seed) || BigInt(seed) >= 2n ** 64n) throw new Error('the seed is a whole number below 2^64');
  const number = (id) => {
    const v = Number($(id).value);
    if (!Number.isFinite(v)) throw new Error(`${id} is not a number`);
    return v;
  };
  const tokens = params.has('tokens') ? Number(params.get('tokens')) : null;
  if (tokens !== null && !(Number.isInteger(tokens) && tokens >= 0)) throw new Error('tokens is a whole number');
  return {
    sampling: { seed, temperature: number('temperature'), topK: number('top-k'), topP: number('top-p') },
    bars: Math.max(1, Math.floor(number('bars'))),
    tokens,
  };
}

function animate() {
  roll.draw(player.nowTick());
  requestAnimationFrame(animate);
}

async function generate() {
  const mine = ++run;
  const { sampling, bars, tokens } = settings();
  const generator = engine.generator(sampling);
  roll.clear();
  player.begin();
  $('generate').disabled = true;
  $('stop').disabled = false;
  $('download').classList.add('disabled');
  setState('generating', 'Generating…');
  const messages = [];
  let notes = 0;
  let barCount = 0;
  let bar = generator.stats();
  let spent = 0;
  let steps = 0;
  const take = () => {
    for (const m of generator.popMessages()) {
      messages.push(m);
      roll.add(m);
      player.play(m);
      if (m.kind === NOTE_ON) notes++;
    }
  };
  const more = () => (tokens !== null ? steps < tokens : barCount < bars && steps < MAX_TOKENS);
  while (more()) {
    const t0 = performance.now();
    for (let i = 0; i < CHUNK && more(); i++) {
      generator.step();
      steps++;
      take(); // after every step, as the Rust and C examples do
      const s = generator.stats();
      if (s.barStart !== bar.barStart) {
        const length = bar.barEnd - bar.barStart;
        barCount += length > 0 ? Math.max(1, Math.round((s.barStart - bar.barStart) / length)) : 1;
        roll.bar(s.barStart);
        bar = s;
      }
    }
    spent += performance.now() - t0;
    $('tokens').textContent = steps;
    $('notes').textContent = notes;
    $('bar-count').textContent = barCount;
    await new Promise((resolve) => setTimeout(resolve, 0));
    if (mine !== run) return; // stopped, or a new piece started
  }
  generator.finish();
  take();
  const stats = generator.stats();
  const speed = spent > 0 ? Math.round((steps / spent) * 1000) : 0;
  $('tokens').textContent = steps;
  $('notes').textContent = notes;
  $('bar-count').textContent = barCount;
  $('speed').textContent = speed;
  $('speed').dataset.tokensPerSecond = speed;
  if (downloadUrl) URL.revokeObjectURL(downloadUrl);
  downloadUrl = URL.createObjectURL(new Blob([midiFile(messages)], { type: 'audio/midi' }));
  $('download').href = downloadUrl;
  $('download').download = `kantor-seed${sampling.seed}.mid`;
  $('download').classList.remove('disabled');
  $('generate').disabled = false;
  const tempos = messages.filter((m) => m.kind === TEMPO).length;
  setState('done', `Done: ${steps} tokens (${stats.illFormed} ill-formed), ${notes} notes, ` +
    `${tempos} tempo changes; playing.`);
}

async function useModel(bytes, name) {
  const info = engine.loadModel(bytes);
  $('model-name').textContent = `${name} (${(info.bytes / 1024).toFixed(0)} KiB, ` +
    `${(info.memoryBytes / 1024).toFixed(1)} KiB of engine memory)`;
}

async function dropModel(file) {
  run++;
  player.stop();
  try {
    await useModel(await file.arrayBuffer(), file.name);
    setState('ready', `Loaded ${file.name}.`);
  } catch (e) {
    // The shipped student stays usable.
    await useModel(await fetchBytes('student.safetensors'), 'student.safetensors (shipped)');
    fail(new Error(`${file.name}: ${e.message}`));
  }
  $('generate').disabled = false;
}

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.arrayBuffer();
}

async function main() {
  const wasm = await fetchBytes('kantor.wasm');
  $('wasm-size').textContent = wasm.byteLength;
  engine = await Engine.load(wasm);
  await useModel(await fetchBytes('student.safetensors'), 'student.safetensors (shipped)');
  $('generate').disabled = false;
  setState('ready', 'Ready.');
  animate();

  $('generate').addEventListener('click', () => generate().catch(fail));
  $('stop').addEventListener('click', () => {
    run++;
    player.stop();
    $('stop').disabled = true;
    $('generate').disabled = false;
    setState('ready', 'Stopped.');
  });
  $('audio').addEventListener('change', (e) => {
    player.soundOn = e.target.checked;
  });
  $('model-file').addEventListener('change', (e) => {
    if (e.target.files[0]) dropModel(e.target.files[0]).catch(fail);
  });
  document.addEventListener('dragover', (e) => {
    e.preventDefault();
    document.body.classList.add('dragging');
  });
  document.addEventListener('dragleave', () => document.body.classList.remove('dragging'));
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    document.body.classList.remove('dragging');
    const file = e.dataTransfer.files[0];
    if (file) dropModel(file).catch(fail);
  });
  if (navigator.requestMIDIAccess) {
    $('midi-connect').hidden = false;
    $('midi-connect').addEventListener('click', async () => {
      try {
        const outputs = await midiOutputs();
        const select = $('midi-output');
        select.replaceChildren(new Option('no MIDI output', ''), ...outputs.map((o) => new Option(o.name, o.id)));
        select.hidden = false;
        select.onchange = () => {
          player.midiOut = outputs.find((o) => o.id === select.value) ?? null;
        };
      } catch (e) {
        setState(document.body.dataset.state, `Web MIDI unavailable: ${e.message}`);
      }
    });
  }
  if (params.get('autorun') === '1') await generate();
}

window.addEventListener('unhandledrejection', (e) => fail(e.reason));
main().catch(fail);
