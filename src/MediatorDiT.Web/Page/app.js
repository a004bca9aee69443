// The page of `mdit serve`: a form over POST /api/jobs and a live view of the job's event stream (docs/SERVE.md).
"use strict";
const palette = ["#f4a261", "#2a9d8f", "#264653", "#e76f51", "#8ab17d", "#6d597a"];
const $ = id => document.getElementById(id);
let info = null, job = null, events = null;
const runs = {};

async function start() {
  const response = await fetch("/api/info");
  info = await response.json();
  const ladder = info.models.length > 1;
  $("model").textContent = `${info.family} ${ladder ? "ladder" : "model"} ${info.models.join(" / ")}, ` +
    `${info.imageSize}x${info.imageSize} images, ${info.sampler} sampler; at most ${info.limits.maxImages} images and ${info.limits.maxSteps} steps a job`;
  info.classes.forEach((name, c) => {
    const label = document.createElement("label");
    label.innerHTML = `<input type="checkbox" data-class="${c}" checked> `;
    label.append(name);
    $("classes").append(label);
  });
  $("images").value = Math.min(info.classes.length, info.limits.maxImages);
  $("images").max = info.limits.maxImages;
  $("steps").value = info.defaultSteps;
  $("steps").min = info.minSteps;
  $("steps").max = info.limits.maxSteps;
  $("ratios").value = info.defaultRatios.join(", ");
  $("first").value = info.defaultFirst;
  info.models.forEach((name, m) => $("single").add(new Option(name, info.mediators[m])));
  $("single").selectedIndex = info.models.length - 1;
  if (!ladder) { $("schedule").hidden = true; $("compare").checked = false; }
  $("legend").innerHTML = info.models.map((name, m) => `<span><i class="swatch" style="background:${palette[m % palette.length]}"></i>${name}</span>`).join("");
  $("all-classes").onclick = () => document.querySelectorAll("#classes input").forEach(box => box.checked = true);
  $("no-classes").onclick = () => document.querySelectorAll("#classes input").forEach(box => box.checked = false);
  $("form").onsubmit = event => { event.preventDefault(); generate(); };
  $("cancel").onclick = () => job && fetch(`/api/jobs/${job}`, { method: "DELETE" });
}

function numbers(text) {
  return text.split(",").map(s => s.trim()).filter(s => s !== "").map(Number);
}

function request() {
  const body = {
    classes: [...document.querySelectorAll("#classes input:checked")].map(box => info.classes[+box.dataset.class]),
    images: Number($("images").value), steps: Number($("steps").value),
    guidance: Number($("guidance").value), seed: Number($("seed").value),
  };
  if (body.classes.length === 0) delete body.classes;
  if (info.models.length > 1) {
    const kind = document.querySelector("input[name=kind]:checked").value;
    if (kind === "dynamic") body.schedule = { kind, ratios: numbers($("ratios").value), first: Number($("first").value) };
    if (kind === "single") body.schedule = { kind, mediators: Number($("single").value) };
    if (kind === "switch") body.schedule = { kind, at: numbers($("switch-at").value) };
    body.compare = $("compare").checked;
  }
  return body;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function generate() {
  showError("");
  if (events) events.close();
  const response = await fetch("/api/jobs", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(request()) });
  const answer = await response.json();
  if (!response.ok) { showError(answer.error); return; }
  job = answer.id;
  for (const key of Object.keys(runs)) delete runs[key];
  $("runs").innerHTML = "";
  $("summary").hidden = true;
  $("generate").disabled = true;
  $("cancel").disabled = false;
  $("status").textContent = answer.position > 0 ? `waiting: place ${answer.position} in the queue` : "starting ...";
  events = new EventSource(answer.events);
  events.addEventListener("queued", e => { $("status").textContent = `waiting: place ${JSON.parse(e.data).position} in the queue`; });
  events.addEventListener("running", () => { $("status").textContent = "running ..."; });
  events.addEventListener("run", e => addRun(JSON.parse(e.data)));
  events.addEventListener("step", e => step(JSON.parse(e.data)));
  events.addEventListener("result", e => result(JSON.parse(e.data)));
  events.addEventListener("done", () => finish("done"));
  events.addEventListener("failed", e => finish("failed", JSON.parse(e.data).error));
  events.addEventListener("cancelled", e => finish("cancelled", JSON.parse(e.data).error));
}

function addRun(run) {
  const section = document.createElement("div");
  section.className = "run";
  section.id = `run-${run.run}`;
  section.innerHTML = `<h2></h2><div class="tiles"></div>`;
  section.querySelector("h2").textContent = run.title;
  const tiles = [];
  for (let i = 0; i < run.images; i++) {
    const tile = document.createElement("div");
    tile.className = "tile";
    tile.innerHTML = `<img alt=""><div class="caption"></div><div class="cost"></div><div class="strip"></div>`;
    tile.querySelector(".caption").textContent = info.classes[run.labels[i]];
    tile.querySelector("img").alt = info.classes[run.labels[i]];
    section.querySelector(".tiles").append(tile);
    tiles.push(tile);
  }
  runs[run.run] = { title: run.title, tiles, result: null };
  $("runs").append(section);
}

function step(s) {
  const run = runs[s.run];
  s.indices.forEach((index, k) => {
    const tile = run.tiles[index];
    const strip = tile.querySelector(".strip");
    while (strip.children.length < s.stepCount) {
      const cell = document.createElement("span");
      cell.className = "cell";
      strip.append(cell);
    }
    const cell = strip.children[s.step - 1];
    const model = s.models[k];
    cell.classList.add("filled");
    cell.style.background = palette[model % palette.length];
    cell.title = `step ${s.step}: ${info.models[model]}`;
    if (s.previews) tile.querySelector("img").src = s.previews[k];
  });
  $("status").textContent = `${run.title}: step ${s.step} of ${s.stepCount}, images ${s.imagesDone + s.indices.length} of ${s.images}`;
}

function result(r) {
  const run = runs[r.run];
  run.result = r;
  r.images.forEach(image => {
    const tile = run.tiles[image.index];
    const img = tile.querySelector("img");
    img.src = image.url;
    img.classList.add("final");
    const link = document.createElement("a");
    link.href = image.url;
    link.download = "";
    link.textContent = "png";
    const switches = image.firstStepOfModel.map((s, m) => s >= 0 ? `${info.models[m]}@${s}` : null).filter(Boolean).join(" ");
    const cost = tile.querySelector(".cost");
    cost.textContent = `${image.gflops.toFixed(3)} GFLOPs `;
    cost.title = `first step of each model: ${switches}`;
    cost.append(link);
  });
}

function finish(state, error) {
  events.close();
  $("generate").disabled = false;
  $("cancel").disabled = true;
  $("status").textContent = state === "done" ? "done" : `${state}: ${error || ""}`;
  if (state !== "done") return;
  const rows = Object.values(runs).filter(run => run.result).map(run => {
    const r = run.result;
    const switches = info.models.map((name, m) => {
      const steps = r.images.map(image => image.firstStepOfModel[m]).filter(s => s >= 0);
      return steps.length ? `${name} from step ${Math.min(...steps)}` : null;
    }).filter(Boolean).join(", ");
    return `<tr><td>${escape(run.title)}</td><td>${r.meanGflopsPerImage.toFixed(3)}</td><td>${r.largestModelGflopsPerImage.toFixed(3)}</td>` +
      `<td>${(100 * r.flopsSaving).toFixed(1)}%</td><td>${r.wallSeconds.toFixed(2)}</td><td>${escape(switches)}</td></tr>`;
  });
  $("gflops").innerHTML = `<tr><th>run</th><th>GFLOPs/image</th><th>largest model alone</th><th>saved</th><th>wall s</th><th>switches</th></tr>` + rows.join("");
  $("downloads").innerHTML = `<a href="/api/jobs/${job}/record.json" download>run record (JSON)</a>`;
  $("summary").hidden = false;
}

function escape(text) {
  const span = document.createElement("span");
  span.textContent = text;
  return span.innerHTML;
}

start().catch(e => showError(`could not reach the server: ${e}`));
