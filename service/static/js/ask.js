// Ask: the answer streams in (SSE over fetch, so the Authorization header goes along), then the
// citations become numbered chips; a chip opens its source passage with the cited span marked.
import {api, jsonBody, request} from "./api.js";

const $ = (id) => document.getElementById(id);

// How the answer was made: every sentence is quoted from, or verified against, the sentence it cites.
const GROUNDING = {
  quoted: "Quoted from your documents: each sentence is copied from the source it cites.",
  verified: "Generated and checked: every sentence's names, numbers and dates were found in the sentence it cites.",
};

function reset() {
  $("answer").textContent = "";
  $("grounding").hidden = true;
  $("not-found").hidden = true;
  $("citations").replaceChildren();
  $("citations-block").hidden = true;
  $("passage").hidden = true;
}

export function parseEvent(block) {
  const event = /^event: (.*)$/m.exec(block)?.[1];
  const data = /^data: (.*)$/m.exec(block)?.[1];
  return {event, data: data ? JSON.parse(data) : {}};
}

async function* events(res) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, {stream: true});
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      yield parseEvent(buffer.slice(0, cut));
      buffer = buffer.slice(cut + 2);
    }
  }
}

function showFinal(result) {
  if (!result.found) {
    $("answer").textContent = "";
    $("not-found").hidden = false;
    return;
  }
  $("answer").textContent = result.answer;
  $("grounding").textContent = GROUNDING[result.grounding] || "";
  $("grounding").hidden = !GROUNDING[result.grounding];
  const chips = result.citations.map(chip);
  $("citations").replaceChildren(...chips);
  $("citations-block").hidden = chips.length === 0;
}

function chip(c) {
  const item = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = c.cited ? "chip" : "chip uncited";
  const where = c.page ? `, p. ${c.page}` : "";
  const number = document.createElement("span");
  number.className = "marker";
  number.textContent = String(c.marker);
  const label = document.createElement("span");
  label.className = "label";
  label.textContent = `${c.title}${where}`;
  button.append(number, label);
  Object.assign(button.dataset, {marker: c.marker, documentId: c.document_id, start: c.start, end: c.end});
  button.setAttribute("aria-label", `Source ${c.marker}: ${c.title}${where}${c.cited ? "" : " (consulted, not cited)"}`);
  button.title = `${c.title}${where}`;
  button.addEventListener("click", () => openPassage(c));
  item.append(button);
  return item;
}

export async function openPassage(c) {
  const query = new URLSearchParams({start: c.start, end: c.end});
  const box = $("passage");
  box.hidden = false;
  $("passage-title").textContent = c.title;
  $("passage-meta").textContent = "Loading the source…";
  $("passage-text").replaceChildren();
  try {
    const p = await api(`/v1/documents/${encodeURIComponent(c.document_id)}/passage?${query}`);
    showPassage(p);
  } catch (e) {
    $("passage-meta").textContent = `The source cannot be shown: ${e.message}`;
  }
  box.focus();
}

function showPassage(p) {
  const pages = p.page_end && p.page_end !== p.page ? `pages ${p.page}–${p.page_end}` : p.page ? `page ${p.page}` : "no page numbers";
  $("passage-title").textContent = p.title;
  $("passage-meta").textContent = `${pages} · characters ${p.start}–${p.end}${p.ocr ? " · read by OCR, check against the original" : ""}`;
  const mark = document.createElement("mark");
  mark.id = "cited-span";
  mark.textContent = p.text.slice(p.highlight_start, p.highlight_end);
  $("passage-text").replaceChildren(p.text.slice(0, p.highlight_start), mark, p.text.slice(p.highlight_end));
  const scroller = $("passage-text");
  scroller.scrollTop = Math.max(0, mark.offsetTop - scroller.clientHeight / 4);  // scroll the text, not the page: the title stays in view
}

async function ask(event) {
  event.preventDefault();
  reset();
  const answer = $("answer"), button = $("ask-button");
  answer.setAttribute("aria-busy", "true");
  button.disabled = true;
  try {
    const res = await request("/v1/query", jsonBody("POST", {query: $("question").value, stream: true}));
    for await (const {event, data} of events(res)) {
      if (event === "token") answer.textContent += data.text;
      if (event === "answer") showFinal(data);
      if (event === "error") answer.textContent = `The answer failed: ${data.error.message}`;
    }
  } catch (e) {
    answer.textContent = `The question could not be asked: ${e.message}`;
  } finally {
    answer.setAttribute("aria-busy", "false");
    button.disabled = false;
  }
}

export function initAsk() {
  $("ask-form").addEventListener("submit", ask);
  $("passage-close").addEventListener("click", () => { $("passage").hidden = true; $("question").focus(); });
}
