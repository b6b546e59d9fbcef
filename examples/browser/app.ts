/**
 * The demo page: pickers, live plots (loss per step, test accuracy per epoch, saved-for-backward
 * memory per step, one line per run so modes compare), conversion to the packed model, a drawing
 * canvas classified by it, and downloads. The numbers come from the worker (worker.ts).
 */
import { TrainerClient, type ProgressEvent } from './client.js';
import type { PageModel } from './tasks.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const client = new TrainerClient(new URL('./worker.js', import.meta.url));
/** Exposed for the browser tests and the benchmark, which drive the same worker. */
(window as unknown as { trainer: TrainerClient }).trainer = client;

const COLORS = ['#36c', '#d62', '#393', '#939', '#c93', '#3aa'];

interface Series { label: string; color: string; loss: [number, number][]; saved: [number, number][]; accuracy: [number, number][] }
const runs: Series[] = [];
let classes: string[] = [];
let mnistFiles: { images?: File; labels?: File } = {};

function plot(canvas: HTMLCanvasElement, title: string, unit: string, pick: (s: Series) => [number, number][], zoom = false): void {
  const g = canvas.getContext('2d')!;
  const { width: w, height: h } = canvas;
  g.clearRect(0, 0, w, h);
  const pad = { l: 48, r: 8, t: 20, b: 22 };
  const points = runs.flatMap(pick);
  g.fillStyle = '#222';
  g.font = '12px system-ui';
  g.fillText(title, pad.l, 14);
  if (points.length === 0) return;
  const xMax = Math.max(...points.map((p) => p[0]), 1);
  const yMax = Math.max(...points.map((p) => p[1])) * 1.05 || 1;
  // zoom: the y axis spans the data (accuracies close to each other), else it starts at 0.
  const yMin = zoom ? Math.max(0, Math.min(...points.map((p) => p[1])) - 0.02) : 0;
  const X = (x: number) => pad.l + (x / xMax) * (w - pad.l - pad.r);
  const Y = (y: number) => h - pad.b - ((y - yMin) / (yMax - yMin || 1)) * (h - pad.t - pad.b);
  g.strokeStyle = '#ccc';
  g.strokeRect(pad.l, pad.t, w - pad.l - pad.r, h - pad.t - pad.b);
  g.fillStyle = '#555';
  for (const f of [0, 0.5, 1]) {
    const y = yMin + (yMax - yMin) * f;
    g.fillText(`${y.toPrecision(3)}${unit}`, 2, Y(y) + 4);
  }
  for (const s of runs) {
    const data = pick(s);
    g.strokeStyle = g.fillStyle = s.color;
    g.beginPath();
    data.forEach(([x, y], j) => (j ? g.lineTo(X(x), Y(y)) : g.moveTo(X(x), Y(y))));
    g.stroke();
    if (data.length === 1) g.fillRect(X(data[0]![0]) - 2, Y(data[0]![1]) - 2, 4, 4);
  }
}

function redraw(): void {
  $('legend').innerHTML = runs.map((s) => `<span style="color:${s.color}">&#9632; ${s.label}</span>`).join(' &nbsp; ');
  plot($('loss'), 'training loss per step', '', (s) => s.loss);
  plot($('accuracy'), 'test accuracy per epoch', '', (s) => s.accuracy, true);
  plot($('saved'), 'saved for backward per step', ' MiB', (s) => s.saved);
}

let active: Series | undefined;

function newRun(label: string): Series {
  active = { label, color: COLORS[runs.length % COLORS.length]!, loss: [], saved: [], accuracy: [] };
  runs.push(active);
  return active;
}

function onEvent(e: ProgressEvent): void {
  // Runs started through window.trainer (tests, benchmark) get a series too.
  const run = active ?? newRun(`run ${runs.length + 1}`);
  if (e.event === 'epoch' && e.epoch + 1 === e.epochs) active = undefined;
  if (e.event === 'progress') {
    const step = e.epoch * e.batches + e.batch;
    run.loss.push([step, e.loss]);
    run.saved.push([step, e.savedBytes / 2 ** 20]);
    $('status').textContent = `${run.label}: epoch ${e.epoch + 1}, batch ${e.batch}/${e.batches}, loss ${e.loss.toFixed(3)}, ${e.samplesPerSec.toFixed(0)} samples/s`;
  } else if (e.testAccuracy !== null) {
    run.accuracy.push([e.epoch + 1, e.testAccuracy]);
  }
  redraw();
}
client.onEvent = onEvent;

function setBusy(busy: boolean): void {
  for (const id of ['train', 'convert', 'dl-st', 'dl-sgq']) $<HTMLButtonElement>(id).disabled = busy;
}

async function train(): Promise<void> {
  setBusy(true);
  $<HTMLButtonElement>('convert').disabled = $<HTMLButtonElement>('dl-sgq').disabled = true;
  try {
    const model = $<HTMLSelectElement>('model').value as PageModel;
    const act = $<HTMLSelectElement>('act').value;
    const items = Number($<HTMLInputElement>('items').value);
    const threads = await client.call('threads', { n: Number($<HTMLInputElement>('threads').value) });
    const mnist = $<HTMLSelectElement>('data').value === 'mnist';
    if (mnist && !(mnistFiles.images && mnistFiles.labels)) throw new Error('drop an MNIST images file and a labels file first');
    newRun(`${model} act=${act} (${threads} thr)`);
    const spec = { model, act, epochs: Number($<HTMLInputElement>('epochs').value), batchSize: 64, seed: 1, lr: 1e-3, trainItems: items, testItems: Math.round(items / 4) };
    const r = await client.call('train', {
      spec,
      ...(mnist ? { mnist: { images: mnistFiles.images!, labels: mnistFiles.labels!, trainItems: items, testItems: spec.testItems } } : {}),
    });
    classes = r.classes;
    $('result').textContent = `${runs.at(-1)!.label}: ${r.parameters} parameters, ${r.trainItems} train / ${r.testItems} test items\n` +
      `test accuracy ${(r.testAccuracy * 100).toFixed(2)}%, ${r.samplesPerSec.toFixed(0)} samples/s, peak saved for backward ${(r.peakSavedBytes / 2 ** 20).toFixed(2)} MiB, ${r.seconds.toFixed(1)} s\n` +
      `weights sha256 ${r.weightsSha256.slice(0, 16)}…`;
    $<HTMLButtonElement>('convert').disabled = false;
  } catch (e) {
    $('result').textContent = `error: ${(e as Error).message}`;
  } finally {
    $<HTMLButtonElement>('train').disabled = false;
    $<HTMLButtonElement>('dl-st').disabled = runs.length === 0;
  }
}

async function convert(): Promise<void> {
  try {
    const c = await client.call('convert', {});
    $('result').textContent += `\npacked model: ${(c.sgqBytes / 1024).toFixed(1)} KiB (float weights ${(c.floatBytes / 1024).toFixed(1)} KiB), ` +
      `test accuracy ${(c.packedAccuracy * 100).toFixed(2)}%, agrees with the float model on ${(c.agreement * 100).toFixed(1)}%`;
    $<HTMLButtonElement>('dl-sgq').disabled = false;
    void classify();
  } catch (e) {
    $('result').textContent += `\nerror: ${(e as Error).message}`;
  }
}

async function download(what: 'safetensors' | 'sgq'): Promise<void> {
  const blob = await client.call('download', { what });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = what === 'sgq' ? 'model.sgq' : 'model.safetensors';
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

// Drawing: white strokes on black, downsampled to 28x28 in [0, 1] like the training images.
const draw = $<HTMLCanvasElement>('draw');
const pen = draw.getContext('2d')!;
function clear(): void {
  pen.fillStyle = '#000';
  pen.fillRect(0, 0, draw.width, draw.height);
  $('scores').textContent = '';
}
clear();
let drawing = false;
draw.onpointerdown = (e) => {
  drawing = true;
  pen.beginPath();
  pen.moveTo(e.offsetX, e.offsetY);
};
draw.onpointermove = (e) => {
  if (!drawing) return;
  pen.strokeStyle = '#fff';
  pen.lineWidth = 16;
  pen.lineCap = 'round';
  pen.lineTo(e.offsetX, e.offsetY);
  pen.stroke();
};
draw.onpointerup = draw.onpointerleave = () => {
  if (drawing) void classify();
  drawing = false;
};
$('clear').onclick = clear;

async function classify(): Promise<void> {
  if ($<HTMLButtonElement>('dl-sgq').disabled) return;
  const small = document.createElement('canvas');
  small.width = small.height = 28;
  const g = small.getContext('2d')!;
  g.drawImage(draw, 0, 0, 28, 28);
  const rgba = g.getImageData(0, 0, 28, 28).data;
  const pixels = new Float32Array(28 * 28);
  for (let i = 0; i < pixels.length; i++) pixels[i] = rgba[i * 4]! / 255;
  const scores = await client.call('classify', { pixels });
  const max = Math.max(...scores), exps = scores.map((s) => Math.exp(s - max)), sum = exps.reduce((a, b) => a + b, 0);
  const best = scores.indexOf(max);
  $('scores').innerHTML = exps
    .map((e, i) => `<div>${i === best ? '<b>' : ''}${(classes[i] ?? String(i)).padEnd(12, '\u00a0')}${i === best ? '</b>' : ''} <span style="width:${Math.round((e / sum) * 120)}px"></span> ${((e / sum) * 100).toFixed(0)}%</div>`)
    .join('');
}

// Dropped MNIST files: the one whose name says "labels" (or is the smaller) holds the labels.
const drop = $('drop');
drop.ondragover = (e) => {
  e.preventDefault();
  drop.classList.add('over');
};
drop.ondragleave = () => drop.classList.remove('over');
function useFiles(files: File[]): void {
  files.sort((a, b) => a.size - b.size);
  mnistFiles = { labels: files.find((f) => /label/i.test(f.name)) ?? files[0], images: files.find((f) => /image/i.test(f.name)) ?? files[1] };
  $('drop').firstChild!.textContent = `images: ${mnistFiles.images?.name ?? '?'}, labels: ${mnistFiles.labels?.name ?? '?'} `;
  $<HTMLSelectElement>('data').value = 'mnist';
}
drop.ondrop = (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  useFiles(Array.from(e.dataTransfer?.files ?? []));
};
$<HTMLInputElement>('files').onchange = () => useFiles(Array.from($<HTMLInputElement>('files').files ?? []));

$('train').onclick = () => void train();
$('convert').onclick = () => void convert();
$('dl-st').onclick = () => void download('safetensors');
$('dl-sgq').onclick = () => void download('sgq');

const ready = client.call('init', {}).then((s) => {
  $('status').textContent = `backend ${s.backend} (${s.variant ?? 'no wasm'}), ${s.threads} thread(s), ${s.crossOriginIsolated ? 'cross-origin isolated: Web Worker threads on shared memory' : 'not cross-origin isolated: one thread'}, packed kernels ${s.quantKernels ? 'wasm' : 'TypeScript'}`;
  $<HTMLInputElement>('threads').value = String(s.threads);
  return s;
});
(window as unknown as { ready: typeof ready }).ready = ready;
redraw();
