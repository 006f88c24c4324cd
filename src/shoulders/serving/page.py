"""The page at ``GET /``: drop or choose an image (a text run: type a text), see the probabilities as
bars. Self-contained (no external scripts, fonts or styles), so it works offline and behind a strict
network policy."""

from __future__ import annotations

import html

from shoulders.serving.errors import ServeConfigError

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>shoulders: __NAME__</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#222}
 #drop{border:2px dashed #888;border-radius:8px;padding:1.5rem;text-align:center}
 #drop.over{background:#eef}
 #preview{max-width:100%;max-height:16rem;display:none;margin:1rem auto}
 .row{display:flex;align-items:center;gap:.5rem;margin:.3rem 0}
 .label{width:10rem;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
 .track{flex:1;background:#eee;border-radius:4px;height:1rem}
 .bar{background:#3a7;height:1rem;border-radius:4px}
 .value{width:4rem;text-align:right;font-variant-numeric:tabular-nums}
 #status.error{color:#b00}
 #text{width:100%;box-sizing:border-box;font:inherit}
</style></head><body>
<h1>__NAME__</h1>
__KEY__
__INPUT__
<p id="status"></p>
<p id="top"></p>
<div id="bars"></div>
<script>
const statusLine = document.getElementById("status");
__LISTENERS__

async function send(body, contentType) {
  statusLine.textContent = "Classifying..."; statusLine.className = "";
  const headers = {}; const key = document.getElementById("key");
  if (key && key.value) headers["X-API-Key"] = key.value;
  if (contentType) headers["Content-Type"] = contentType;
  try {
    const response = await fetch("predict?top_k=1000", {method: "POST", body, headers});
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
    show(answer);
  } catch (error) { statusLine.textContent = "Error: " + error.message; statusLine.className = "error"; }
}

function show(answer) {
  const best = answer.predictions[0];
  document.getElementById("top").textContent = best.label + " (" + (100 * best.probability).toFixed(1) + "%)";
  statusLine.textContent = answer.latency_ms.toFixed(0) + " ms";
  const bars = document.getElementById("bars"); bars.replaceChildren();
  for (const p of answer.predictions) {
    const row = document.createElement("div"); row.className = "row";
    const label = document.createElement("span"); label.className = "label"; label.textContent = p.label;
    const track = document.createElement("div"); track.className = "track";
    const bar = document.createElement("div"); bar.className = "bar"; bar.style.width = (100 * p.probability) + "%";
    const value = document.createElement("span"); value.className = "value"; value.textContent = p.probability.toFixed(3);
    track.append(bar); row.append(label, track, value); bars.append(row);
  }
}
</script></body></html>
"""

_KEY_FIELD = '<p><label>API key <input id="key" type="password" autocomplete="off"></label></p>'

_IMAGE_INPUT = """<div id="drop"><p>Drop an image here, or choose one:</p>
<input id="file" type="file" accept="image/*"></div>
<img id="preview" alt="the chosen image">"""
_IMAGE_LISTENERS = """const drop = document.getElementById("drop"), input = document.getElementById("file");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over");
  if (e.dataTransfer.files.length) sendFile(e.dataTransfer.files[0]); });
input.addEventListener("change", () => { if (input.files.length) sendFile(input.files[0]); });

function sendFile(file) {
  const preview = document.getElementById("preview");
  preview.src = URL.createObjectURL(file); preview.style.display = "block";
  const form = new FormData(); form.append("file", file);
  send(form, null);
}"""

_TEXT_INPUT = """<p><label for="text">Type or paste a text:</label></p>
<textarea id="text" rows="6"></textarea>
<p><button id="classify" type="button">Classify</button></p>"""
_TEXT_LISTENERS = """document.getElementById("classify").addEventListener("click", () => {
  const text = document.getElementById("text").value;
  if (!text.trim()) { statusLine.textContent = "Type a text first."; statusLine.className = "error"; return; }
  send(JSON.stringify({text}), "application/json");
});"""

_INPUTS = {"image": (_IMAGE_INPUT, _IMAGE_LISTENERS), "text": (_TEXT_INPUT, _TEXT_LISTENERS)}


def page_html(model_name: str, needs_key: bool = False, task: str = "image") -> str:
    """The page for a run of ``task`` ("image": a file picker; "text": a text box)."""
    if task not in _INPUTS:
        raise ServeConfigError(f"task (the run's config.json) must be one of {', '.join(_INPUTS)}. Received: {task!r}")
    field, listeners = _INPUTS[task]
    page = _PAGE.replace("__INPUT__", field).replace("__LISTENERS__", listeners)
    return page.replace("__KEY__", _KEY_FIELD if needs_key else "").replace("__NAME__", html.escape(model_name))
