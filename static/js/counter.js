// The librarian's tab. Card events arrive on /ws/terminal at once (/terminal/status is the
// polling fallback); a tapped card is looked up with one POST; the number is shown large
// (A), as a barcode (B) or typed by the bridge (C). In PIN mode the card holder types the
// PIN on this tab's pad; it is sealed to the bridge (seal.js) and never leaves in clear.
import { sealPin } from "./seal.js";

const root = document.getElementById("counter");
const T = JSON.parse(document.getElementById("counter-strings").textContent);
const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
const $ = (id) => document.getElementById(id);
const POLL_MS = 3000;

const state = {
  epoch: null, // the card session being served
  done: null, // the last card session already answered (same card: no second lookup)
  busy: false,
  pin: "",
  prompt: null,
  online: null,
  pushed: 0, // events received on the socket
  polls: 0, // status polls answered (tests wait on it)
  hasResult: false,
  history: [],
  times: {}, // Date.now() at the last card event, request and answer (benches read it)
};
window.counter = state; // tests read the state history

function setState(name) {
  root.dataset.state = name;
  state.history.push(name);
}

function status(tone, icon, title, explanation = "", action = "") {
  const box = $("status");
  box.className = `status tone-${tone}`;
  $("status-icon").textContent = icon;
  $("status-title").textContent = title;
  $("status-explanation").textContent = explanation;
  $("status-action").textContent = action;
}

function waiting() {
  status("idle", "▣", T.waiting, T.waiting_hint);
  setState("waiting");
}

function hide(...ids) {
  for (const id of ids) $(id).hidden = true;
}

async function api(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
    body: JSON.stringify(body || {}),
    credentials: "same-origin",
  });
  if (!response.ok) {
    return { ok: false, code: "transport", title: String(response.status), tone: "error", icon: "!" };
  }
  return response.json();
}

// -- outcomes ----------------------------------------------------------------------

function clearResult() {
  hide("result", "result-digits", "result-barcode", "result-typed", "result-notes", "offer-link");
  $("result-barcode").innerHTML = "";
  state.hasResult = false;
}

function showFailure(info) {
  hide("pin", "link");
  clearResult();
  status(info.tone || "error", info.icon || "!", info.title, info.explanation, info.action);
  $("offer-link").hidden = !info.offer_link;
  setState(`error:${info.code}`);
  $("status-title").focus();
}

function showResult(data) {
  const r = data.result;
  hide("pin", "link", "offer-link");
  clearResult();
  $("result").hidden = false;
  const digits = r.mode === "A" || (r.mode === "C" && !r.typed) || (r.mode === "B" && !r.barcode_svg);
  if (digits) {
    $("result-number").textContent = r.number;
    $("result-digits").hidden = false;
  }
  if (r.mode === "B" && r.barcode_svg) {
    $("result-barcode").innerHTML = r.barcode_svg; // our own SVG, built server-side
    $("result-barcode").hidden = false;
  }
  if (r.mode === "C") {
    const line = $("result-typed");
    line.textContent = "";
    if (r.typed) {
      line.append(`${T.typed} `);
      const strong = document.createElement("strong");
      strong.textContent = r.number;
      line.append(strong, r.suffix_sign ? ` ${r.suffix_sign}` : "");
    } else {
      line.textContent = T.not_typed;
    }
    line.hidden = false;
  }
  const notes = [];
  if (data.linked) notes.push(T.linked);
  if (r.terms_outdated) notes.push(T.terms_outdated);
  if (notes.length) {
    $("result-notes").textContent = notes.join(" ");
    $("result-notes").hidden = false;
  }
  state.hasResult = true;
  if (data.notice) {
    status(data.notice.tone, data.notice.icon, data.notice.title, data.notice.explanation, data.notice.action);
  } else {
    let title = r.mode === "B" ? T.found_barcode : T.found;
    if (r.mode === "C" && r.typed) title = `${T.typed} ${r.number} ${r.suffix_sign}`.trim();
    status("ok", "✓", title);
  }
  setState(`result:${r.mode}`);
}

function handle(data) {
  if (data.pin) return showPin(data.pin, data.ok ? null : data);
  if (data.ok) return showResult(data);
  state.done = state.epoch;
  return showFailure(data);
}

// -- card events -------------------------------------------------------------------

async function cardInserted(epoch) {
  if (state.busy || epoch === state.done || epoch === state.epoch) return;
  state.epoch = epoch;
  state.busy = true;
  state.times = { event: Date.now() };
  hide("link", "pin", "offer-link");
  clearResult();
  status("busy", "…", T.reading);
  setState("reading");
  try {
    const data = await api("/counter/api/lookup", { epoch });
    state.times.answer = Date.now();
    if (state.epoch !== epoch) return; // removed meanwhile: that message is already shown
    if (!data.pin) state.done = epoch;
    handle(data);
  } finally {
    state.busy = false;
  }
}

function cardRemoved(epoch) {
  if (epoch !== undefined && state.epoch !== null && epoch !== state.epoch) return;
  const mid = state.busy || !$("pin").hidden || !$("link").hidden;
  state.epoch = null;
  state.done = null;
  if (mid) {
    api("/counter/api/cancel");
    showFailure(removedInfo());
  } else if (state.hasResult) {
    $("status-action").textContent = T.removed_after;
    setState("removed_after_result");
  } else {
    waiting();
  }
}

function removedInfo() {
  return JSON.parse(root.dataset.removed || "null") || { code: "card_removed", tone: "warn", icon: "↩", title: T.waiting };
}

function online(on) {
  if (on === state.online) return;
  state.online = on;
  const pill = $("reader-state");
  pill.dataset.online = String(on);
  pill.textContent = on ? T.online : T.offline;
  if (!on) {
    state.epoch = null;
    showFailure(JSON.parse(root.dataset.offline));
  } else if (root.dataset.state.startsWith("error:bridge_offline")) {
    waiting();
  }
}

function onStatus(s) {
  online(Boolean(s.bridge_online));
  if (s.card && s.card.epoch !== state.epoch) cardInserted(s.card.epoch);
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws/terminal`);
  ws.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type !== "keepalive") state.pushed += 1;
    if (event.type === "status") onStatus(event);
    else if (event.type === "card_inserted") cardInserted(event.epoch);
    else if (event.type === "card_removed") cardRemoved(event.epoch);
    else if (event.type === "bridge_online") online(true);
    else if (event.type === "bridge_offline") online(false);
  };
  ws.onclose = () => setTimeout(connect, 1000);
}

async function poll() {
  // A reply that crossed a pushed event is older than that event: it is dropped, or a
  // bridge that just went offline would show as online again.
  const pushed = state.pushed;
  try {
    const response = await fetch("/terminal/status", { headers: { Accept: "application/json" } });
    const s = response.ok ? await response.json() : null;
    if (s && pushed === state.pushed) onStatus(s);
  } catch {
    /* the next poll */
  } finally {
    state.polls += 1;
  }
}

// -- PIN pad (the card holder types; the staff never do) ---------------------------

function renderPin() {
  const dots = $("pin-dots").children;
  for (let i = 0; i < dots.length; i++) dots[i].classList.toggle("filled", i < state.pin.length);
  $("pin-count").textContent = `${state.pin.length} / 4`;
  root.querySelector('[data-pin="ok"]').disabled = state.pin.length !== 4 || state.busy;
}

function showPin(prompt, failure) {
  state.prompt = prompt;
  state.pin = "";
  hide("link", "offer-link");
  clearResult();
  $("pin").hidden = false;
  const last = prompt.tries_left === 1;
  $("pin-confirm-row").hidden = !last;
  $("pin-confirm").checked = false;
  let message = "";
  if (failure) message = T.pin_wrong.replace("{n}", String(failure.tries_left ?? ""));
  if (last) message = `${message} ${T.pin_last}`.trim();
  $("pin-message").textContent = message;
  status("busy", "⌨", T.pin_waiting, root.dataset.linking === "1" ? T.linking_pin : T.pin_hint);
  setState(failure ? "pin:retry" : "pin");
  renderPin();
  root.querySelector('[data-digit="1"]').focus();
}

async function submitPin() {
  if (state.pin.length !== 4 || state.busy || !state.prompt) return;
  const confirmLast = state.prompt.tries_left === 1;
  if (confirmLast && !$("pin-confirm").checked) {
    $("pin-message").textContent = T.pin_last;
    return;
  }
  state.busy = true;
  renderPin();
  let sealed;
  try {
    sealed = await sealPin(state.prompt.seal_public_key, state.pin, {
      bridgeId: state.prompt.bridge_id,
      commandId: state.prompt.command_id,
    });
  } finally {
    state.pin = ""; // the clear PIN is dropped at once
  }
  status("busy", "…", T.reading);
  try {
    const data = await api("/counter/api/pin", { sealed, confirm_last_try: confirmLast });
    root.dataset.linking = "0";
    state.done = state.epoch;
    handle(data);
  } finally {
    state.busy = false;
    renderPin();
  }
}

root.querySelector(".pin-pad").addEventListener("click", (e) => {
  const button = e.target.closest("button");
  if (!button || state.busy) return;
  if (button.dataset.digit !== undefined && state.pin.length < 4) state.pin += button.dataset.digit;
  else if (button.dataset.pin === "clear") state.pin = state.pin.slice(0, -1);
  else if (button.dataset.pin === "ok") return submitPin();
  renderPin();
});

document.addEventListener("keydown", (e) => {
  if ($("pin").hidden || state.busy) return;
  if (/^[0-9]$/.test(e.key) && state.pin.length < 4) state.pin += e.key;
  else if (e.key === "Backspace") state.pin = state.pin.slice(0, -1);
  else if (e.key === "Enter") return submitPin();
  else return;
  e.preventDefault();
  renderPin();
});

// -- staff-assisted linking ---------------------------------------------------------

$("start-link").addEventListener("click", () => {
  hide("offer-link");
  $("link").hidden = false;
  setState("link");
  $("link-number").focus();
});

$("link-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (state.busy) return;
  state.busy = true;
  try {
    const data = await api("/counter/api/link", {
      number: $("link-number").value,
      terms_accepted: $("link-terms").checked,
      epoch: state.done,
    });
    if (data.ok && data.pin) {
      root.dataset.linking = "1";
      $("link-number").value = "";
      showPin(data.pin, null);
    } else if (!data.final) {
      status(data.tone, data.icon, data.title, data.explanation, data.action);
      setState(`link:${data.code}`);
    } else {
      handle(data);
    }
  } finally {
    state.busy = false;
  }
});

for (const button of root.querySelectorAll("[data-cancel]")) {
  button.addEventListener("click", () => {
    api("/counter/api/cancel");
    hide("pin", "link");
    state.pin = "";
    root.dataset.linking = "0";
    waiting();
  });
}

$("clear-result").addEventListener("click", () => {
  clearResult();
  waiting();
});

$("copy-number").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText($("result-number").textContent);
    $("copy-number").textContent = T.copied;
  } catch {
    window.getSelection().selectAllChildren($("result-number"));
  }
});

waiting();
connect();
poll();
setInterval(poll, POLL_MS);
