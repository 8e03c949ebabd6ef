// The auditor's view: the trail filtered by who, which document, what and when; the hash chain's
// verification; and an export of the filtered records as JSON (every page of them).
import {api} from "./api.js";

const $ = (id) => document.getElementById(id);
const PAGE = 1000;

function filters() {
  const query = new URLSearchParams();
  for (const name of ["actor", "document", "action"]) {
    const value = $(`f-${name}`).value.trim();
    if (value) query.set(name, value);
  }
  for (const name of ["from", "to"]) {
    const value = $(`f-${name}`).value;  // datetime-local is the auditor's local time
    if (value) query.set(name, new Date(value).toISOString());
  }
  return query;
}

function row(r) {
  const tr = document.createElement("tr");
  for (const value of [r.seq, r.time, r.subject, r.action, r.outcome, r.document_ids.join(", ")]) {
    const td = document.createElement("td");
    td.textContent = value;
    tr.append(td);
  }
  return tr;
}

let latest = 0;  // only the newest search may fill the table (an older, slower one must not overwrite it)

async function search(event) {
  event?.preventDefault();
  $("audit-error").textContent = "";
  const mine = ++latest;
  try {
    const page = await api(`/v1/audit?${filters()}&limit=200`);
    if (mine !== latest) return;
    $("audit-rows").replaceChildren(...page.records.map(row));
    $("audit-caption").textContent = `Records (${page.records.length}${page.records.length === 200 ? ", first 200: narrow the filters or export" : ""})`;
  } catch (e) {
    $("audit-error").textContent = e.message;
  }
}

let verifying = 0;

async function verify() {
  delete $("chain").dataset.ok;
  $("chain").textContent = "Verifying the chain…";
  const mine = ++verifying;
  try {
    const result = await api("/v1/audit/verify");
    if (mine !== verifying) return;
    $("chain").dataset.ok = String(result.ok);
    $("chain").dataset.anchored = String(Boolean(result.anchor));
    // The anchor (the head signed outside the data directory) is what shows a cut tail or a re-signed chain.
    const anchored = result.anchor
      ? `matches the anchor of ${result.anchor.time} (record #${result.anchor.seq})`
      : "no anchor yet: a cut tail shows only once the service anchors the head (ENCLAVE_AUDIT__ANCHOR_FILE)";
    const where = result.first_broken_seq === null ? "" : ` at record ${result.first_broken_seq}`;
    $("chain").textContent = result.ok
      ? `Chain verified: ${result.records} records intact (head #${result.head_seq}), ${anchored}.`
      : `Chain BROKEN${where}: ${result.problem || "the trail was altered"}.`;
  } catch (e) {
    $("chain").textContent = `The chain could not be verified: ${e.message}`;
  }
}

async function exportRecords() {
  const records = [];
  for (let offset = 0; ; offset += PAGE) {
    const page = await api(`/v1/audit?${filters()}&limit=${PAGE}&offset=${offset}`);
    records.push(...page.records);
    if (page.records.length < PAGE) break;
  }
  const blob = new Blob([JSON.stringify(records, null, 2)], {type: "application/json"});
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `enclave-audit-${new Date().toISOString().slice(0, 19).replace(/:/g, "")}.json`;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

export function initAudit() {
  $("audit-form").addEventListener("submit", search);
  $("verify").addEventListener("click", verify);
  $("export").addEventListener("click", () => exportRecords().catch((e) => { $("audit-error").textContent = e.message; }));
}

export async function openAudit() {
  await Promise.all([verify(), search()]);
}
