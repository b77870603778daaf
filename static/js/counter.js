// The librarian's tab. Card events arrive on /ws/terminal at once (/terminal/status is the
// polling fallback). Without a PIN the platform reads the tapped card by itself and pushes
// the number here ("number" events): this tab asks nothing. With a PIN, the card holder
// types it on this tab's pad; it is sealed to the bridge (seal.js) and the flow runs on the
// server (/flow, flow.js). The number is shown large (A), as a barcode (B) or typed by the
// bridge (C).
import { completePin, connect, flow } from "./flow.js";

const root = document.getElementById("counter");
const T = JSON.parse(document.getElementById("counter-strings").textContent);
const $ = (id) => document.getElementById(id);
const POLL_MS = 3000;
const PURPOSE = {
  lookup: root.dataset.purposeLookup,
  link: root.dataset.purposeLink,
  verify: root.dataset.purposeVerify,
};

const state = {
  epoch: null, // the card session being served
  done: null, // the last card session already answered (same card: no second lookup)
  busy: false,
  pin: "",
  prompt: null,
  online: null,
  reader: null, // "online" | "offline" | "unpaired"
  pushed: 0, // events received on the socket
  polls: 0, // status polls answered (tests wait on it)
  hasResult: false,
  history: [],
  times: {}, // Date.now() at the last card event and answer (benches read it)
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

// -- outcomes ----------------------------------------------------------------------

function clearResult() {
  hide(
    "result",
    "result-digits",
    "result-barcode",
    "result-typed",
    "result-notes",
    "result-unverified",
    "result-patron",
    "verify-link",
    "offer-link",
  );
  state.unverified = null;
  state.shown = null;
  $("result-barcode").innerHTML = "";
  state.hasResult = false;
}

function showFailure(info) {
  hide("pin", "link");
  clearResult();
  status(info.tone || "error", info.icon || "!", info.title || info.code, info.message, info.action);
  $("offer-link").hidden = !info.offer_link;
  setState(`error:${info.code}`);
  $("status-title").focus();
}

function showResult(r, { linked = false, notice = null, verifiedNow = false } = {}) {
  hide("pin", "link", "offer-link");
  clearResult();
  $("result").hidden = false;
  state.shown = r.number;
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
  if (r.verified === false) {
    // A claim: digits only (never typed, no barcode) until staff check the library card.
    state.unverified = r.number;
    $("result-unverified").hidden = false;
    $("verify-link").hidden = false;
  }
  const notes = [];
  if (linked) notes.push(T.linked);
  if (verifiedNow) notes.push(T.verified_now);
  if (r.terms_outdated) notes.push(T.terms_outdated);
  if (notes.length) {
    $("result-notes").textContent = notes.join(" ");
    $("result-notes").hidden = false;
  }
  state.hasResult = true;
  state.times.answer = Date.now();
  if (notice) {
    status(notice.tone, notice.icon, notice.title, notice.message, notice.action);
  } else {
    let title = r.mode === "B" ? T.found_barcode : T.found;
    if (r.mode === "C" && r.typed) title = `${T.typed} ${r.number} ${r.suffix_sign}`.trim();
    status("ok", "✓", title);
  }
  setState(`result:${r.mode}`);
}

function answered(reply) {
  // A flow's answer: the PIN prompt, or the purpose's result.
  if (reply.pin) return showPin(reply.pin, null);
  state.done = state.epoch;
  const result = reply.result || {};
  showResult(result.presentation, {
    linked: result.linked,
    notice: result.notice,
    verifiedNow: result.verified_now,
  });
}

function failed(error) {
  const info = error.info || { code: "transport" };
  state.done = state.epoch;
  showFailure(info);
}

// -- card events -------------------------------------------------------------------

function cardInserted(epoch) {
  if (epoch === state.done || epoch === state.epoch) return;
  state.epoch = epoch;
  state.times = { event: Date.now() };
  hide("link", "pin", "offer-link");
  clearResult();
  status("busy", "…", T.reading);
  setState("reading");
  // The platform answers the tap itself: the number, or "needs_pin" (the PIN pad here).
}

async function beginLookup(epoch) {
  if (state.busy) return;
  state.busy = true;
  try {
    const reply = await flow.begin(PURPOSE.lookup);
    if (state.epoch !== epoch) return; // removed meanwhile: that message is already shown
    answered(reply);
  } catch (error) {
    if (state.epoch === epoch) failed(error);
  } finally {
    state.busy = false;
  }
}

function numberPushed(event) {
  // The platform looked the tapped card up by itself, or asks for the holder's PIN.
  if (event.epoch !== state.epoch || state.done === event.epoch) return;
  if (event.needs_pin) {
    if ($("pin").hidden && !state.busy) beginLookup(event.epoch);
    return;
  }
  state.done = event.epoch;
  if (event.error) {
    showFailure(event.error);
  } else {
    showResult(event.result, { notice: event.notice });
  }
}

function cardRemoved(epoch) {
  if (epoch !== undefined && state.epoch !== null && epoch !== state.epoch) return;
  const mid = state.busy || !$("pin").hidden || !$("link").hidden || root.dataset.state === "reading";
  state.epoch = null;
  state.done = null;
  if (mid) {
    flow.cancel();
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

// Offline (paired: it comes back by itself) and unpaired (revoked or never paired: an
// administrator must pair it again) tell the librarian different things to do.
function online(on, paired = true) {
  const reader = on ? "online" : paired === false ? "unpaired" : "offline";
  if (reader === state.reader) return;
  state.reader = reader;
  state.online = on;
  const pill = $("reader-state");
  pill.dataset.online = String(on);
  pill.textContent = T[reader];
  if (!on) {
    state.epoch = null;
    showFailure(JSON.parse(root.dataset[reader]));
  } else if (/^error:bridge_(offline|unpaired)/.test(root.dataset.state)) {
    waiting();
  }
}

function onStatus(s) {
  online(Boolean(s.bridge_online), s.bridge_paired);
  if (s.card && s.card.epoch !== state.epoch) cardInserted(s.card.epoch);
  if (s.number) numberPushed(s.number);
}

// What the library's own system says about the patron (SIP2), pushed after the number.
function patronStatus(event) {
  if (!state.hasResult || event.number !== state.shown || !event.patron) return;
  const p = event.patron;
  const line = $("result-patron");
  let problems = [];
  if (!p.available) problems = [T.patron_unavailable];
  else {
    if (p.valid_patron === false) problems.push(T.patron_invalid);
    for (const flag of p.flags || []) problems.push(T.patron_flags[flag] || flag);
  }
  line.textContent = problems.length ? `${T.patron_says} ${problems.join(" / ")}` : T.patron_ok;
  line.className = `patron-line ${problems.length ? "patron-problem" : "patron-ok"}`;
  line.hidden = false;
  state.patron = p;
}

function onEvent(event) {
  if (event.type !== "keepalive") state.pushed += 1;
  if (event.type === "status") onStatus(event);
  else if (event.type === "card_inserted") cardInserted(event.epoch);
  else if (event.type === "number") numberPushed(event);
  else if (event.type === "patron_status") patronStatus(event);
  else if (event.type === "card_removed") cardRemoved(event.epoch);
  else if (event.type === "bridge_online") online(true);
  else if (event.type === "bridge_offline") online(false, event.paired);
  else if (event.type === "session_ended" || (event.type === "error" && event.code === "no_terminal")) {
    location.reload(); // signed out (here or by an admin): the sign-in page
  }
}

async function poll() {
  // A reply that crossed a pushed event is older than that event: it is dropped, or a
  // bridge that just went offline would show as online again.
  const pushed = state.pushed;
  try {
    const s = await flow.status();
    if (pushed === state.pushed) onStatus(s);
  } catch (error) {
    if (error.status === 401) location.reload();
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
  const last = prompt.last_try;
  $("pin-confirm-row").hidden = !last;
  $("pin-confirm").checked = false;
  let message = "";
  if (failure) message = T.pin_wrong.replace("{n}", String(failure.tries_left ?? ""));
  if (last) message = `${message} ${T.pin_last}`.trim();
  $("pin-message").textContent = message;
  const hint = { 1: T.linking_pin, verify: T.verifying_pin }[root.dataset.linking] || T.pin_hint;
  status("busy", "⌨", T.pin_waiting, hint);
  setState(failure ? "pin:retry" : "pin");
  renderPin();
  root.querySelector('[data-digit="1"]').focus();
}

async function submitPin() {
  if (state.pin.length !== 4 || state.busy || !state.prompt) return;
  const confirmLast = state.prompt.last_try;
  if (confirmLast && !$("pin-confirm").checked) {
    $("pin-message").textContent = T.pin_last;
    return;
  }
  state.busy = true;
  renderPin();
  const digits = state.pin;
  state.pin = ""; // the clear PIN is dropped at once
  status("busy", "…", T.reading);
  try {
    const reply = await completePin(state.prompt, digits, confirmLast);
    root.dataset.linking = "0";
    answered(reply);
  } catch (error) {
    const info = error.info || {};
    if (info.code === "wrong_pin" && info.pin) {
      showPin(info.pin, info);
    } else {
      root.dataset.linking = "0";
      failed(error);
    }
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
    const reply = await flow.begin(PURPOSE.link, {
      number: $("link-number").value,
      terms_accepted: $("link-terms").checked,
    });
    root.dataset.linking = "1";
    $("link-number").value = "";
    answered(reply);
  } catch (error) {
    const info = error.info || {};
    if (!info.final) {
      status(info.tone || "error", info.icon || "!", info.title, info.message, info.action);
      setState(`link:${info.code}`);
    } else {
      failed(error);
    }
  } finally {
    state.busy = false;
  }
});

// -- staff verification of a claimed number -------------------------------------------

$("verify-link").addEventListener("click", async () => {
  if (state.busy || !state.unverified) return;
  state.busy = true;
  try {
    const reply = await flow.begin(PURPOSE.verify, { number: state.unverified });
    root.dataset.linking = "verify";
    answered(reply);
  } catch (error) {
    failed(error);
  } finally {
    state.busy = false;
  }
});

for (const button of root.querySelectorAll("[data-cancel]")) {
  button.addEventListener("click", () => {
    flow.cancel();
    hide("pin", "link");
    state.pin = "";
    state.prompt = null;
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
connect(onEvent);
poll();
setInterval(poll, POLL_MS);
