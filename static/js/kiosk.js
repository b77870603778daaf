// The kiosk: one page, five screens (start, pin, mykey, link, links) plus an error screen.
// Card events arrive on the /ws/terminal WebSocket at once; /terminal/status is polled as
// a fallback. The PIN is sealed here to the bridge (seal.js) and never leaves in clear.
// The same page runs at home (/home, data-mode="home") on the citizen's own reader: a
// longer idle time (data-idle), "Sign out" instead of "Finish", and a word after it.
import { sealPin } from "./seal.js";

const root = document.getElementById("kiosk");
const IDLE_MS = Number(root.dataset.idle || 60) * 1000;
const HOME = root.dataset.mode === "home";
const POLL_MS = 3000;
const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
const $ = (id) => document.getElementById(id);
const text = (id, vars = {}) =>
  $(id).innerHTML.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? "")).trim();

const state = {
  screen: "start",
  epoch: null, // the card session we are serving
  seenEpoch: null, // the last card session handled: the same card does not start again
  busy: false,
  pin: "",
  prompt: null,
  confirmLast: false,
  me: null,
  provider: null,
  online: true,
  pushed: 0, // events received on the socket
  polls: 0, // status polls answered (tests wait on it)
  history: ["start"],
};
window.kiosk = state; // tests read the screen history

function status(message) {
  $("kiosk-status").textContent = message || "";
}

function show(name) {
  status("");
  for (const section of root.querySelectorAll("[data-screen]")) {
    section.hidden = section.dataset.screen !== name;
  }
  if (state.screen !== name) state.history.push(name);
  state.screen = name;
  root.dataset.current = name;
  const h1 = root.querySelector(`[data-screen="${name}"] h1`);
  if (h1) {
    document.title = `${h1.textContent} | ${document.title.split(" | ").pop()}`;
    h1.focus();
  }
}

function when(name, on) {
  for (const el of root.querySelectorAll(`[data-when="${name}"]`)) el.hidden = !on;
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  let data = {};
  try {
    data = await response.json();
  } catch {
    data = { error: { code: "transport", final: false } };
  }
  if (!response.ok) {
    const error = new Error(data.error?.code || String(response.status));
    error.info = data.error || {};
    throw error;
  }
  return data;
}

function showError(info) {
  $("h-error").textContent = info.title || info.code || "";
  $("error-explanation").textContent = info.explanation || "";
  $("error-action").textContent = info.action || "";
  show("error");
}

function reset() {
  state.epoch = null;
  state.pin = "";
  state.prompt = null;
  state.confirmLast = false;
  state.me = null;
  state.provider = null;
  renderPin();
  when("reading", false);
}

async function end(screen = "start", message = "") {
  reset();
  try {
    await api("POST", "/kiosk/api/end");
  } catch {
    /* the session ends anyway */
  }
  show(screen);
  status(message);
}

// -- card events ---------------------------------------------------------------------

async function cardInserted(epoch) {
  if (state.busy || (state.screen !== "start" && state.screen !== "error")) return;
  if (epoch === state.seenEpoch) return;
  state.busy = true;
  state.epoch = epoch;
  state.seenEpoch = epoch;
  show("start");
  when("reading", true);
  status(text("t-reading"));
  try {
    await api("POST", "/kiosk/api/card");
    await beginPin();
  } catch (error) {
    showError(error.info || {});
  } finally {
    state.busy = false;
    when("reading", false);
  }
}

function cardRemoved(epoch) {
  if (state.epoch !== null && (epoch === undefined || epoch === state.epoch)) {
    end("start", text("t-ended"));
  }
}

function online(on) {
  state.online = on;
  when("offline", !on);
}

function onStatus(s) {
  online(s.bridge_online);
  if (s.card && state.epoch === null) cardInserted(s.card.epoch);
  if (!s.card && state.epoch !== null) cardRemoved();
  if (s.card && state.epoch !== null && s.card.epoch !== state.epoch) cardRemoved();
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
    else if (event.type === "snapshot") {
      // The bridge (re)connected: the readers and cards it holds now.
      const cards = (event.readers || []).filter((r) => Number.isInteger(r.epoch));
      const newest = cards.sort((a, b) => b.epoch - a.epoch)[0];
      onStatus({ bridge_online: true, card: newest ? { epoch: newest.epoch } : null });
    } else if (event.type === "bridge_online") online(true);
    else if (event.type === "bridge_offline") {
      online(false);
      if (state.epoch !== null) cardRemoved();
    }
  };
  ws.onclose = () => setTimeout(connect, 2000);
}

async function poll() {
  // A reply that crossed a pushed event is older than that event: it is dropped.
  const pushed = state.pushed;
  try {
    const s = await api("GET", "/terminal/status");
    if (pushed === state.pushed) onStatus(s);
  } catch {
    /* next time */
  } finally {
    state.polls += 1;
  }
}

// -- PIN -----------------------------------------------------------------------------

function renderPin() {
  const dots = $("pin-display").children;
  for (let i = 0; i < dots.length; i++) dots[i].classList.toggle("filled", i < state.pin.length);
  $("pin-count").textContent = text("t-count", { n: state.pin.length });
  root.querySelector('[data-pin="ok"]').disabled = state.pin.length !== 4 || state.busy;
}

async function beginPin(errorInfo) {
  state.pin = "";
  state.prompt = await api("POST", "/kiosk/api/pin/begin");
  const tries = state.prompt.tries_left;
  $("pin-tries").textContent = tries === null ? "" : text("t-tries", { n: tries });
  const last = tries === 1 && !state.confirmLast;
  $("last-try").hidden = !last;
  $("pin-entry").hidden = last;
  $("pin-error").hidden = !errorInfo;
  if (errorInfo) $("pin-error").textContent = `${errorInfo.title} ${errorInfo.explanation || ""}`;
  renderPin();
  show("pin");
  if (errorInfo) status(errorInfo.title);
}

async function submitPin() {
  if (state.pin.length !== 4 || !state.prompt || state.busy) return;
  state.busy = true;
  renderPin();
  status(text("t-checking"));
  const { bridge_id: bridgeId, command_id: commandId, seal_public_key: key } = state.prompt;
  let sealed;
  try {
    sealed = await sealPin(key, state.pin, { bridgeId, commandId });
  } finally {
    state.pin = ""; // never kept after sealing
  }
  try {
    const me = await api("POST", "/kiosk/api/pin/complete", {
      sealed,
      confirm_last_try: state.confirmLast,
    });
    state.confirmLast = false;
    showMe(me);
  } catch (error) {
    const info = error.info || {};
    if (!info.final && ["wrong_pin", "pin_last_try", "pin_format", "auth_failed"].includes(info.code)) {
      try {
        await beginPin(info);
      } catch (again) {
        showError(again.info || {});
      }
    } else {
      showError(info);
    }
  } finally {
    state.busy = false;
    renderPin();
  }
}

// -- MyKey ID and links ---------------------------------------------------------------

function formatId(id) {
  return `${id.slice(0, 4)}-${id.slice(4)}`;
}

function showMe(me, screen = "mykey") {
  state.me = me;
  $("mykey-id").textContent = formatId(me.mykey_id);
  $("links-mykey").textContent = formatId(me.mykey_id);
  when("created", me.created);
  when("opened", !me.created);
  when("can-reroll", me.can_reroll);
  $("rerolls-left").textContent = text("t-rerolls", { n: me.rerolls_left });
  renderLinks();
  renderProviders();
  show(screen);
}

function renderLinks() {
  const list = $("link-list");
  list.replaceChildren();
  $("no-links").hidden = state.me.links.length > 0;
  for (const link of state.me.links) {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.className = "link-name";
    name.textContent = link.provider;
    const number = document.createElement("span");
    number.className = "link-number";
    number.textContent = link.number;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button secondary";
    button.textContent = text("t-unlink");
    button.setAttribute("aria-label", `${text("t-unlink")}: ${link.provider}`);
    button.addEventListener("click", () => unlink(link.provider_id));
    li.append(name, number, button);
    list.append(li);
  }
}

function renderProviders() {
  const list = $("provider-list");
  list.replaceChildren();
  for (const p of state.me.providers) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "provider-button";
    button.textContent = p.linked ? `${p.name} (${text("t-linked")})` : p.name;
    button.disabled = p.linked;
    button.setAttribute("aria-pressed", String(state.provider?.id === p.id));
    button.addEventListener("click", () => pickProvider(p));
    list.append(button);
  }
  $("link-form").hidden = !state.provider;
}

function pickProvider(p) {
  state.provider = p;
  $("terms-text").textContent = p.terms || "—";
  $("accept-terms").checked = false;
  $("customer-number").value = "";
  $("customer-number").inputMode = p.digits_only ? "numeric" : "text";
  $("link-error").hidden = true;
  renderProviders();
  $("h-terms").scrollIntoView({ block: "start" });
}

function linkError(message) {
  $("link-error").textContent = message;
  $("link-error").hidden = false;
}

async function submitLink(event) {
  event.preventDefault();
  if (!state.provider) return linkError(text("t-pick"));
  if (!$("accept-terms").checked) return linkError(text("t-accept"));
  try {
    const me = await api("POST", "/kiosk/api/links", {
      provider_id: state.provider.id,
      customer_number: $("customer-number").value,
      accepted: true,
      terms_version: state.provider.terms_version,
    });
    state.provider = null;
    showMe(me, "links");
    status(text("t-linked-ok"));
  } catch (error) {
    const info = error.info || {};
    if (info.final) return showError(info);
    linkError(info.explanation || info.code);
  }
}

async function unlink(providerId) {
  try {
    showMe(await api("POST", `/kiosk/api/links/${providerId}/delete`), "links");
  } catch (error) {
    showError(error.info || {});
  }
}

async function reroll() {
  try {
    showMe(await api("POST", "/kiosk/api/reroll"));
  } catch (error) {
    showError(error.info || {});
  }
}

// -- idle timeout --------------------------------------------------------------------

let idleTimer = null;
function item(text, tag = "li") {
  const el = document.createElement(tag);
  el.textContent = text;
  return el;
}

async function showPoints() {
  let body;
  try {
    body = await api("GET", "/kiosk/api/points");
  } catch (error) {
    showError(error.info);
    return;
  }
  const list = $("points-list");
  const words = list.dataset;
  list.replaceChildren();
  for (const m of body.municipalities) {
    list.append(item(m.municipality, "h2"), item(`${words.balance}: ${m.spendable}`, "p"));
    const lots = document.createElement("ul");
    for (const lot of m.lots) lots.append(item(`${lot.remaining} (${words.expires} ${lot.expires_at})`));
    const moves = document.createElement("ul");
    for (const t of m.transfers) moves.append(item(`${t.date} ${t.counterparty} ${t.points > 0 ? "+" : ""}${t.points}`));
    list.append(lots, item(words.history, "h3"), moves);
  }
  $("no-points").hidden = body.municipalities.length > 0;
  show("points");
}

function touched() {
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    if (state.screen !== "start") end("start", text("t-ended"));
  }, IDLE_MS);
}

// -- wiring --------------------------------------------------------------------------

root.addEventListener("click", (event) => {
  const target = event.target.closest("button");
  if (!target) return;
  if (target.dataset.digit !== undefined && state.pin.length < 4) {
    state.pin += target.dataset.digit;
    renderPin();
  } else if (target.dataset.pin === "clear") {
    state.pin = "";
    renderPin();
  } else if (target.dataset.pin === "ok") {
    submitPin();
  } else if (target.dataset.action === "end") {
    end("start", HOME ? text("t-ended") : "");
  } else if (target.dataset.action === "points") {
    showPoints();
  } else if (target.dataset.goto) {
    if (target.dataset.goto === "link") state.provider = null;
    if (state.me) showMe(state.me, target.dataset.goto);
  }
});
$("last-try-confirm").addEventListener("click", () => {
  state.confirmLast = true;
  $("last-try").hidden = true;
  $("pin-entry").hidden = false;
  root.querySelector('[data-digit="1"]').focus();
});
$("reroll").addEventListener("click", reroll);
$("link-form").addEventListener("submit", submitLink);
for (const name of ["pointerdown", "keydown", "input"]) document.addEventListener(name, touched);
document.addEventListener("keydown", (event) => {
  if (state.screen !== "pin" || $("pin-entry").hidden) return;
  if (/^[0-9]$/.test(event.key) && state.pin.length < 4) {
    state.pin += event.key;
    renderPin();
  } else if (event.key === "Backspace") {
    state.pin = state.pin.slice(0, -1);
    renderPin();
  } else if (event.key === "Enter" && state.pin.length === 4) {
    event.preventDefault();
    submitPin();
  }
});

async function resume() {
  // After a language switch (a reload), pick up the card session where it was.
  try {
    const me = await api("GET", "/kiosk/api/me");
    const s = await api("GET", "/terminal/status");
    state.epoch = s.card ? s.card.epoch : null;
    state.seenEpoch = state.epoch;
    showMe(me);
  } catch {
    show("start");
  }
  connect();
  poll();
  setInterval(poll, POLL_MS);
  touched();
}

renderPin();
resume();
