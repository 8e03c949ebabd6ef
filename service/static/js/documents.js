// Documents: uploads with a progress bar and per-file ingestion status, the caller's documents
// (the API lists only what the caller may see), deletion with a confirmation and the erasure receipt.
import {api, uploadWithProgress} from "./api.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 700;
let canDelete = false;

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  return td;
}

function uploadRow(file) {
  const item = document.createElement("li");
  item.className = "upload";
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = file.name;
  const bar = document.createElement("progress");
  bar.max = 1; bar.value = 0;
  bar.setAttribute("aria-label", `Upload of ${file.name}`);
  const status = document.createElement("span");
  status.className = "status";
  status.setAttribute("role", "status");
  status.textContent = "uploading";
  item.append(name, bar, status);
  $("uploads").append(item);
  return {item, bar, status};
}

export function describe(doc) {
  const job = doc.job;
  if (doc.status === "failed" || job?.status === "failed") return `failed: ${doc.error || job?.error || "unknown reason"}`;
  if (doc.status === "ready") return `ready: ${doc.pages ?? "?"} page(s), ${doc.chunk_count} chunks`;
  if (job && job.status === "running") return `processing: ${job.pages_done}${doc.pages ? ` of ${doc.pages}` : ""} page(s) done`;
  return doc.status;
}

async function follow(documentId, row) {
  for (;;) {
    const doc = await api(`/v1/documents/${encodeURIComponent(documentId)}`);
    row.status.textContent = describe(doc);
    row.item.dataset.state = doc.status;
    if (doc.status === "ready" || doc.status === "failed") return refresh();
    await new Promise((done) => setTimeout(done, POLL_MS));
  }
}

async function uploadOne(file) {
  const row = uploadRow(file);
  const form = new FormData();
  form.append("file", file);
  try {
    const accepted = await uploadWithProgress("/v1/documents", form, (share) => { row.bar.value = share; });
    row.bar.value = 1;
    row.status.textContent = accepted.duplicate ? "already uploaded" : "queued";
    row.item.dataset.documentId = accepted.document_id;
    await follow(accepted.document_id, row);
  } catch (e) {
    row.item.dataset.state = "failed";
    row.status.textContent = `failed: ${e.message}`;
  }
}

async function upload(event) {
  event.preventDefault();
  const files = [...$("file").files];
  $("file").value = "";
  await Promise.all(files.map(uploadOne));
}

function confirmDelete(doc) {
  const dialog = $("confirm-delete");
  $("confirm-text").textContent = `“${doc.title}” and everything derived from it (chunks, vectors, the original, its key) will be erased. This cannot be undone.`;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "delete"), {once: true});
    dialog.returnValue = "";
    dialog.showModal();
  });
}

async function remove(doc) {
  if (!(await confirmDelete(doc))) return;
  try {
    const receipt = await api(`/v1/documents/${encodeURIComponent(doc.id)}`, {method: "DELETE"});
    $("receipt-text").textContent = JSON.stringify(receipt, null, 2);
  } catch (e) {
    $("receipt-text").textContent = `The document was not deleted: ${e.message}`;
  }
  $("receipt").showModal();
  refresh();
}

// What the document's opening states: its parties and date ("Acme Corp.; Globex Inc. · effective 2020-03-01").
function opening(doc) {
  const o = doc.opening;
  if (!o) return "";
  const date = o.date ? `${o.date_kind === "effective" ? "effective" : "dated"} ${o.date}` : "";
  return [o.parties.join("; "), date].filter(Boolean).join(" · ");
}

function docRow(doc) {
  const row = document.createElement("tr");
  row.dataset.documentId = doc.id;
  row.append(cell(doc.title), cell(opening(doc)), cell(describe(doc)), cell(doc.pages), cell(doc.chunk_count), cell(doc.collection));
  const actions = document.createElement("td");
  if (canDelete) {
    const del = document.createElement("button");
    del.type = "button";
    del.textContent = "Delete";
    del.setAttribute("aria-label", `Delete ${doc.title}`);
    del.addEventListener("click", () => remove(doc));
    actions.append(del);
  }
  row.append(actions);
  return row;
}

let canList = false;

export async function refresh() {
  if (!canList) return;
  try {
    const {documents} = await api("/v1/documents?limit=200");
    $("doc-rows").replaceChildren(...documents.map(docRow));
  } catch (e) {
    const row = document.createElement("tr");
    const td = cell(`The documents could not be listed: ${e.message}`);
    td.colSpan = 7;
    row.append(td);
    $("doc-rows").replaceChildren(row);
  }
}

export function initDocuments(views) {
  canDelete = Boolean(views.upload);
  canList = Boolean(views.documents);
  $("doc-list").hidden = !canList;
  $("upload-form").hidden = !views.upload;
  $("upload-form").addEventListener("submit", upload);
}
