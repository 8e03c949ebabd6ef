"use strict";
const $ = (id) => document.getElementById(id);

// The API key (Authorization: Bearer) lives in this tab's sessionStorage only.
function withKey(options = {}) {
  const key = sessionStorage.getItem("enclave-key");
  return key ? {...options, headers: {...(options.headers || {}), Authorization: `Bearer ${key}`}} : options;
}

async function api(path, options = {}) {
  const res = await fetch(path, withKey(options));
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error ? body.error.message : res.statusText);
  return body;
}

function showCitations(citations) {
  const list = $("citations");
  list.replaceChildren();
  for (const c of citations) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `[${c.marker}] ${c.title}` + (c.page ? `, p. ${c.page}` : "");
    button.addEventListener("click", () => openPassage(c));
    item.append(button);
    list.append(item);
  }
}

function openPassage(c) {
  $("passage").hidden = false;
  $("passage-title").textContent = c.title;
  $("passage-meta").textContent = `page ${c.page ?? "–"}, characters ${c.start}–${c.end}`;
  const mark = document.createElement("mark");
  mark.textContent = c.snippet;
  $("passage-text").replaceChildren(mark);
}

async function ask(event) {
  event.preventDefault();
  $("answer").textContent = "";
  showCitations([]);
  const res = await fetch("/v1/query", withKey({method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({query: $("question").value, stream: true})}));
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    $("answer").textContent = body.error ? body.error.message : res.statusText;
    return;
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, {stream: true});
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      handleEvent(buffer.slice(0, cut));
      buffer = buffer.slice(cut + 2);
    }
  }
}

function handleEvent(block) {
  const event = /^event: (.*)$/m.exec(block)?.[1];
  const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? "{}");
  if (event === "token") $("answer").textContent += data.text;
  if (event === "answer") { $("answer").textContent = data.answer; showCitations(data.citations); }
  if (event === "error") $("answer").textContent = data.error.message;
}

async function upload(event) {
  event.preventDefault();
  for (const file of $("file").files) {
    const form = new FormData();
    form.append("file", file);
    try { await api("/v1/documents", {method: "POST", body: form}); } catch (e) { alert(`${file.name}: ${e.message}`); }
  }
  refresh();
}

async function remove(doc) {
  if (!confirm(`Delete ${doc.title}?`)) return;
  await api(`/v1/documents/${doc.id}`, {method: "DELETE"});
  refresh();
}

async function refresh() {
  let documents;
  try { ({documents} = await api("/v1/documents")); } catch (e) { $("doc-rows").replaceChildren(); return; }
  const rows = documents.map((d) => {
    const row = document.createElement("tr");
    for (const v of [d.title, d.error ? `${d.status}: ${d.error}` : d.status, d.pages ?? "", d.chunk_count]) {
      const cell = document.createElement("td"); cell.textContent = v; row.append(cell);
    }
    const cell = document.createElement("td");
    const del = document.createElement("button"); del.type = "button"; del.textContent = "Delete";
    del.addEventListener("click", () => remove(d)); cell.append(del); row.append(cell);
    return row;
  });
  $("doc-rows").replaceChildren(...rows);
}

function saveKey(event) {
  event.preventDefault();
  sessionStorage.setItem("enclave-key", $("api-key").value.trim());
  $("api-key").value = "";
  refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  $("key-form").addEventListener("submit", saveKey);
  $("ask-form").addEventListener("submit", ask);
  $("upload-form").addEventListener("submit", upload);
  refresh();
  setInterval(refresh, 5000);
});
