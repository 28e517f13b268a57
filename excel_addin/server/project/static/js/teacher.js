// The class, as a teacher's task pane shows it: every workbook's run on the server (queued, training,
// done), each student's last test accuracy, and Stop for any run that waits or trains. Shown only when
// the signed-in user is a teacher (the status the pane polls says so); the server checks it again on
// each request (GET <appPath>/gradsheet/class, POST .../class/stop: 403 for anyone else).

import { authHeaders } from "./signin.js";

const element = (id) => document.getElementById(id);
const ACTIVE = /^(Queued|Starting|Training)/;

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function percent(value) {
  return typeof value === "number" ? `${(100 * value).toFixed(2)}%` : "-";
}

async function stopRun(settings, run, button) {
  button.disabled = true;
  const response = await fetch(`${window.location.origin}${settings.class_url}/stop`, {
    method: "POST",
    headers: { ...(await authHeaders()), "Content-Type": "application/json" },
    body: JSON.stringify({ owner: run.owner, workbook: run.workbook }),
  });
  const answer = response.ok ? (await response.json()).status : `${response.status} ${await response.text()}`;
  element("gs-class-message").textContent = `${run.owner} / ${run.workbook}: ${answer}`;
}

function row(settings, run) {
  const tr = document.createElement("tr");
  tr.append(cell(run.owner), cell(run.workbook), cell(run.status), cell(percent(run.accuracy)));
  const action = document.createElement("td");
  if (ACTIVE.test(run.status)) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "btn btn-outline-danger btn-sm";
    button.textContent = "Stop";
    button.addEventListener("click", () => stopRun(settings, run, button));
    action.append(button);
  }
  tr.append(action);
  return tr;
}

export async function showClass(settings, isTeacher) {
  const section = element("gs-class");
  section.hidden = !isTeacher;
  if (!isTeacher) return;
  const response = await fetch(`${window.location.origin}${settings.class_url}`, {
    headers: await authHeaders(),
  });
  if (!response.ok) {
    element("gs-class-message").textContent = `Cannot read the class: ${response.status}`;
    return;
  }
  const { runs } = await response.json();
  element("gs-class-rows").replaceChildren(...runs.map((run) => row(settings, run)));
  element("gs-class-empty").hidden = runs.length > 0;
}
