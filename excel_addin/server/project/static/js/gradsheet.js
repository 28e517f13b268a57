// gradsheet's task pane: the short status of this workbook's training, and the workbook's location for
// the buttons. xlwings' custom-scripts/index.js wires up the xw-click buttons themselves.
//
// Where the server signs users in, the pane asks for a class code first (signin.js) and every request
// carries the credentials getAuth gives (auth.js).
//
// Every couple of seconds the pane reads this workbook's id (the defined name the server writes on
// Set up or Train) and asks the server where its training stands (GET <appPath>/gradsheet/status).
// The buttons that identify the workbook get its location (Office.context.document.url) as their script
// argument, so the server can tell a copy of a workbook from the original.
//
// ?preview in the URL shows the pane in a plain browser (to check a server, or to take its picture):
// xlwings' "the add-in didn't load" prompt, which a page outside Office gets, stays hidden, a note says
// it is a preview (not with ?preview=picture), and &workbook=<id> shows that workbook's training.

import { authHeaders, setUpSignIn } from "./signin.js";
import { showClass } from "./teacher.js";

const settings = JSON.parse(document.getElementById("gradsheet-config").textContent);
const POLL_MS = 2000;
const SIGN_IN_FIRST = "Sign in above to see your training.";
let inExcel = false; // true once Office.js says this page runs in Excel (not in a plain browser)

const element = (id) => document.getElementById(id);

const query = new URLSearchParams(window.location.search);
const preview = query.has("preview");
if (preview) {
  document.documentElement.classList.add("gs-preview");
  element("gs-preview-note").hidden = query.get("preview") === "picture";
}

function constantText(formula) {
  // A defined name holding text reads back as its formula: ="abc" (quotes doubled inside)
  const match = /^="((?:[^"]|"")*)"$/.exec((formula || "").trim());
  return match ? match[1].replace(/""/g, '"') : null;
}

async function workbookId() {
  if (preview) return query.get("workbook");
  if (!inExcel) return null;
  try {
    return await Excel.run(async (context) => {
      const name = context.workbook.names.getItemOrNullObject(settings.id_name);
      name.load("formula");
      await context.sync();
      return name.isNullObject ? null : constantText(name.formula);
    });
  } catch (error) {
    return null;
  }
}

function passDocumentLocation() {
  const url = (globalThis.Office && Office.context && Office.context.document && Office.context.document.url) || "";
  for (const button of document.querySelectorAll("[data-gradsheet-document]")) {
    button.setAttribute("xw-args", JSON.stringify([url]));
  }
}

function show(state, id) {
  element("gs-status").textContent = state.status;
  const percent = Math.round(100 * (state.progress || 0));
  element("gs-progress").style.width = `${percent}%`;
  element("gs-progress").parentElement.setAttribute("aria-valuenow", String(percent));
  element("gs-queue").textContent = state.queue ? `position ${state.queue}` : "-";
  element("gs-epochs").textContent = String(state.epochs);
  if (id) element("gs-workbook").textContent = id;
  const server = state.server;
  element("gs-server").textContent =
    `Server: ${server.running} of ${server.slots} training slot(s) busy, ${server.queued} queued.`;
}

async function refresh() {
  const id = await workbookId();
  const query = id ? `?workbook=${encodeURIComponent(id)}` : "";
  try {
    const response = await fetch(`${window.location.origin}${settings.status_url}${query}`, {
      headers: await authHeaders(),
    });
    if (response.status === 401) {
      element("gs-status").textContent = SIGN_IN_FIRST;
      return;
    }
    if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
    const state = await response.json();
    show(state, id);
    await showClass(settings, state.teacher);
  } catch (error) {
    element("gs-status").textContent = `Cannot reach the gradsheet server: ${error.message}`;
  }
}

async function poll() {
  if (!document.hidden) await refresh();
  setTimeout(poll, POLL_MS);
}

if (globalThis.Office) {
  Office.onReady((info) => {
    inExcel = info.host === Office.HostType.Excel;
    if (inExcel) passDocumentLocation();
  });
}
setUpSignIn(settings, refresh);
poll();
