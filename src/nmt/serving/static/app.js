"use strict";
// The page of `nmt serve`: POST /translate with the lines typed, list the translations,
// draw the attention of the one clicked as a table of shaded cells. No libraries.

const form = document.getElementById("form");
const source = document.getElementById("source");
const beam = document.getElementById("beam");
const statusLine = document.getElementById("status");
const list = document.getElementById("translations");
const section = document.getElementById("attention-section");
const table = document.getElementById("attention");
const attentionOf = document.getElementById("attention-of");
let hasAttention = false;

function say(text, isError) {
  statusLine.textContent = text;
  statusLine.className = isError ? "error" : "";
}

async function loadModel() {
  try {
    const info = await (await fetch("/model")).json();
    hasAttention = info.has_attention;
    beam.value = info.serve.beam_size;
    beam.max = info.serve.max_beam;
    document.getElementById("model-line").textContent =
      `${info.name}: ${info.src_lang} → ${info.tgt_lang}, ` +
      `${info.parameters.toLocaleString("en")} parameters` +
      (hasAttention ? "" : " (no attention)");
  } catch (err) {
    say(`could not read /model: ${err}`, true);
  }
}

// viridis-like ramp from dark blue (0) to yellow (1)
function shade(w) {
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const x = Math.min(Math.max(w, 0), 1) * (stops.length - 1);
  const i = Math.min(Math.floor(x), stops.length - 2);
  const f = x - i;
  const c = stops[i].map((v, k) => Math.round(v + f * (stops[i + 1][k] - v)));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

function showAttention(index, map) {
  document.querySelectorAll("#translations li").forEach((li, i) =>
    li.classList.toggle("selected", i === index));
  table.replaceChildren();
  if (!map) {
    section.hidden = true;
    return;
  }
  attentionOf.textContent = `of sentence ${index + 1}`;
  const head = table.createTHead().insertRow();
  head.appendChild(document.createElement("th"));
  for (const piece of map.source) {
    const th = document.createElement("th");
    th.textContent = piece;
    head.appendChild(th);
  }
  const body = table.createTBody();
  map.weights.forEach((row, r) => {
    const tr = body.insertRow();
    const th = document.createElement("th");
    th.textContent = map.target[r];
    tr.appendChild(th);
    row.forEach((w, c) => {
      const td = tr.insertCell();
      td.style.background = shade(w);
      td.title = `${map.target[r]} ← ${map.source[c]}: ${w.toFixed(3)}`;
      td.dataset.weight = w;
    });
  });
  section.hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const lines = source.value.split("\n").map((s) => s.trim()).filter((s) => s.length > 0);
  if (lines.length === 0) {
    say("type a sentence first", true);
    return;
  }
  say("translating…", false);
  list.replaceChildren();
  section.hidden = true;
  const started = performance.now();
  let answer;
  try {
    const response = await fetch("/translate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text: lines, beam: Number(beam.value), attention: hasAttention }),
    });
    answer = await response.json();
    if (!response.ok) {
      say(answer.error || `HTTP ${response.status}`, true);
      return;
    }
  } catch (err) {
    say(`request failed: ${err}`, true);
    return;
  }
  const maps = answer.attention || [];
  answer.translations.forEach((text, i) => {
    const li = document.createElement("li");
    const src = document.createElement("span");
    src.className = "source";
    src.textContent = lines[i];
    const tgt = document.createElement("span");
    tgt.className = "target";
    tgt.textContent = text;
    li.append(src, tgt);
    li.addEventListener("click", () => showAttention(i, maps[i]));
    list.appendChild(li);
  });
  if (maps.length > 0) showAttention(0, maps[0]);
  const ms = Math.round(performance.now() - started);
  say(`${lines.length} sentence${lines.length > 1 ? "s" : ""} in ${ms} ms`, false);
});

loadModel();
