// The kiosk: one page, five screens (start, pin, mykey, link, links) plus an error screen.
// Card events arrive on the /ws/terminal WebSocket at once; /terminal/status is polled as
// a fallback. The flow itself is kept on the server (/flow, purpose "kiosk", flow.js):
// this tab keeps only what it shows. The PIN is sealed here to the bridge (seal.js) and
// never leaves in clear. The same page runs at home (/home, data-mode="home") on the
// citizen's own reader: a longer idle time (data-idle), "Sign out" instead of "Finish".
// "I have a new card" (purpose kiosk_renew): the old card and its PIN (screen renew-old),
// then the new card (POST /flow/next, screen renew-new) and its PIN; the server holds the
// two cards' order and moves the MyKey ID.
import { call, completePin, connect, flow } from "./flow.js";
import { sealSecret } from "./seal.js";
import { createFinder } from "./facility-finder.js";

const root = document.getElementById("kiosk");
const IDLE_MS = Number(root.dataset.idle || 60) * 1000;
const HOME = root.dataset.mode === "home";
const POLL_MS = 3000;
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
  renew: null, // "old" or "new": which card of "I have a new card" we wait for
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

function showError(info) {
  $("h-error").textContent = info.title || info.code || "";
  $("error-explanation").textContent = info.message || "";
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
  state.renew = null;
  renderPin();
  when("reading", false);
}

async function end(screen = "start", message = "") {
  reset();
  await flow.cancel();
  show(screen);
  status(message);
}

// -- card events ---------------------------------------------------------------------

const CARD_SCREENS = ["start", "error", "renew-old", "renew-new"];

async function cardInserted(epoch) {
  if (state.busy || !CARD_SCREENS.includes(state.screen)) return;
  if (epoch === state.seenEpoch) return;
  if (state.screen === "renew-new") return newCardInserted(epoch);
  if (state.screen !== "renew-old") state.renew = null;
  state.busy = true;
  state.epoch = epoch;
  state.seenEpoch = epoch;
  if (!state.renew) show("start");
  when("reading", true);
  status(text("t-reading"));
  try {
    const reply = await flow.begin(state.renew ? "kiosk_renew" : "kiosk");
    showPrompt(reply.pin);
  } catch (error) {
    showError(error.info || {});
  } finally {
    state.busy = false;
    when("reading", false);
  }
}

const WAIT_FOR_NEW_CARD = [
  "same_card",
  "no_card",
  "card_removed",
  "card_unreadable",
  "timeout",
  "bridge_offline",
  "reader_missing",
  "crl_unavailable",
];

// The second card of "I have a new card": the old one has left (or is still there).
async function newCardInserted(epoch) {
  state.busy = true;
  state.seenEpoch = epoch;
  $("renew-error").hidden = true;
  status(text("t-reading"));
  try {
    const reply = await call("POST", "/flow/next", {});
    state.epoch = epoch;
    showPrompt(reply.pin);
  } catch (error) {
    const info = error.info || {};
    if (!WAIT_FOR_NEW_CARD.includes(info.code)) showError(info);
    else {
      // The same card again, or the reader or the tap failed: this screen (and the
      // flow on the server) waits for the new card.
      $("renew-error").textContent = [info.title, info.action].filter(Boolean).join(" ");
      $("renew-error").hidden = false;
      status(info.title || "");
    }
  } finally {
    state.busy = false;
  }
}

function cardRemoved(epoch, message = text("t-ended")) {
  if (state.screen === "renew-new") return; // the old card leaves for the new one
  if (state.screen === "renew-old" && state.epoch === null) return;
  if (state.epoch !== null && (epoch === undefined || epoch === state.epoch)) {
    end("start", message);
  }
}

// Offline comes back by itself; unpaired (revoked) never does: at a kiosk the notice says
// to ask staff; at home the page reloads, to pair the citizen's bridge again.
function online(on, paired = true) {
  state.online = on;
  when("offline", !on && paired !== false);
  when("unpaired", !on && paired === false);
  if (!on && paired === false && root.dataset.mode === "home") location.reload();
}

function onStatus(s) {
  online(s.bridge_online, s.bridge_paired);
  if (state.screen === "renew-new") {
    if (s.card && s.card.epoch !== state.epoch) cardInserted(s.card.epoch);
    return;
  }
  if (!s.bridge_online) {
    // No "place your card again": the offline (or unpaired) notice says what can be done.
    if (state.epoch !== null) cardRemoved(undefined, "");
    return;
  }
  if (s.card && state.epoch === null) cardInserted(s.card.epoch);
  if (!s.card && state.epoch !== null) cardRemoved();
  if (s.card && state.epoch !== null && s.card.epoch !== state.epoch) cardRemoved();
}

function onEvent(event) {
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
    online(false, event.paired);
    if (state.epoch !== null) cardRemoved(undefined, ""); // the notice says why, not "place your card"
  } else if (event.type === "session_ended" || (event.type === "error" && event.code === "no_terminal")) {
    location.reload(); // the kiosk (or home) binding was revoked
  }
}

async function poll() {
  // A reply that crossed a pushed event is older than that event: it is dropped.
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

// -- PIN -----------------------------------------------------------------------------

function renderPin() {
  const dots = $("pin-display").children;
  for (let i = 0; i < dots.length; i++) dots[i].classList.toggle("filled", i < state.pin.length);
  $("pin-count").textContent = text("t-count", { n: state.pin.length });
  root.querySelector('[data-pin="ok"]').disabled = state.pin.length !== 4 || state.busy;
}

function showPrompt(prompt, errorInfo) {
  state.pin = "";
  state.prompt = prompt;
  const tries = prompt.tries_left;
  $("pin-tries").textContent = tries === null ? "" : text("t-tries", { n: tries });
  const last = prompt.last_try && !state.confirmLast;
  $("last-try").hidden = !last;
  $("pin-entry").hidden = last;
  $("pin-error").hidden = !errorInfo;
  $("pin-which").hidden = !state.renew;
  if (state.renew) $("pin-which").textContent = text(state.renew === "old" ? "t-pin-old" : "t-pin-new");
  if (errorInfo) $("pin-error").textContent = `${errorInfo.title} ${errorInfo.message || ""}`;
  renderPin();
  show("pin");
  if (errorInfo) status(errorInfo.title);
}

async function submitPin() {
  if (state.pin.length !== 4 || !state.prompt || state.busy) return;
  state.busy = true;
  renderPin();
  status(text("t-checking"));
  const digits = state.pin;
  state.pin = ""; // never kept after sealing
  try {
    const reply = await completePin(state.prompt, digits, state.confirmLast);
    state.confirmLast = false;
    if (reply.result && reply.result.stage === "new_card") {
      state.renew = "new"; // the old card is verified: now the new one
      show("renew-new");
      return;
    }
    state.renew = null;
    showMe(reply.result);
  } catch (error) {
    const info = error.info || {};
    if (info.code === "wrong_pin" && info.pin) {
      showPrompt(info.pin, info);
    } else if (!info.final && ["pin_last_try", "auth_failed", "timeout", "busy"].includes(info.code)) {
      try {
        showPrompt((await flow.prompt()).pin, info);
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
  when("opened", !me.created && !me.moved);
  when("moved", Boolean(me.moved));
  showCertificate(me.certificate);
  when("can-reroll", me.can_reroll);
  $("rerolls-left").textContent = text("t-rerolls", { n: me.rerolls_left });
  renderLinks();
  renderProviders();
  show(screen);
}

// When the card's certificate ends; in its last 3 months, what renewal will take.
function showCertificate(cert) {
  when("cert", Boolean(cert));
  when("renew-linkage", Boolean(cert && cert.renew_soon && cert.linkage));
  when("renew-two-cards", Boolean(cert && cert.renew_soon && !cert.linkage));
  if (cert) $("cert-end").textContent = text("t-cert-end", { date: longDate(cert.not_after) });
}

// "2027-01-16" as the page's language writes a date (2027年1月16日, 16 January 2027).
function longDate(iso) {
  try {
    const locale = root.dataset.lang === "en" ? "en-GB" : "ja-JP";
    const [y, m, d] = iso.split("-").map(Number);
    return new Intl.DateTimeFormat(locale, { dateStyle: "long", timeZone: "UTC" }).format(
      new Date(Date.UTC(y, m - 1, d)),
    );
  } catch {
    return iso;
  }
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
    li.append(name, number);
    if (!link.verified) {
      // A claim: the facility checks the card once (or the library's password does).
      const note = document.createElement("span");
      note.className = "link-state";
      note.textContent = text("t-unverified");
      li.append(note);
    }
    li.append(button);
    list.append(li);
  }
}

function renderProviders() {
  when("near", Boolean(state.me.near) && state.me.providers.length > 0);
  if (state.me.near?.name) $("h-near").textContent = text("t-near", { place: state.me.near.name });
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
  $("library-password").value = "";
  // A library that checks its own password (SIP2): the number is verified at once.
  $("sip2-block").hidden = !p.sip2;
  $("link-claim").hidden = !p.sip2;
  $("link-error").hidden = true;
  renderProviders();
  finder.mark(p.id);
  $("h-terms").scrollIntoView({ block: "start" });
}

// A facility found by search or browsing: its terms come with it from the server.
async function pickFound(p) {
  try {
    pickProvider((await flow.act("facility", { provider_id: p.id })).result);
  } catch (error) {
    const info = error.info || {};
    if (info.final) return showError(info);
    linkError([info.title, info.message].filter(Boolean).join(": ") || info.code);
  }
}

const finder = createFinder({
  text,
  onPick: pickFound,
  onError: (error) => {
    const info = error.info || {};
    if (info.final) showError(info);
    else status([info.title, info.message].filter(Boolean).join(": ") || info.code);
  },
});

function linkError(message) {
  $("link-error").textContent = message;
  $("link-error").hidden = false;
  $("link-error").focus?.();
}

function linkParams() {
  return {
    provider_id: state.provider.id,
    customer_number: $("customer-number").value,
    accepted: true,
    terms_version: state.provider.terms_version,
  };
}

// The library password: sealed here to the library's connector bridge for one check
// (seal.js); the platform relays the envelope and never sees the password.
async function verifyWithLibrary() {
  const password = $("library-password").value;
  if (!password) return linkError(text("t-password"));
  const prepared = await flow.act("link_prepare", linkParams());
  const seal = prepared.result.seal;
  $("library-password").value = "";
  let sealed;
  try {
    sealed = await sealSecret(seal.seal_key, password, {
      bridgeId: seal.bridge_id,
      purpose: seal.purpose,
      binding: seal.command_id,
    });
  } catch {
    return linkError(text("t-password-seal"));
  }
  status(text("t-checking-library"));
  return flow.act("link_verify", { sealed });
}

async function submitLink(event, { claim = false } = {}) {
  event?.preventDefault();
  if (!state.provider) return linkError(text("t-pick"));
  if (!$("accept-terms").checked) return linkError(text("t-accept"));
  if (state.busy) return;
  state.busy = true;
  try {
    const reply =
      state.provider.sip2 && !claim
        ? await verifyWithLibrary()
        : await flow.act("link", linkParams());
    if (!reply) return; // a message is shown
    const linkedTo = state.provider.id;
    state.provider = null;
    showMe(withLinks(reply.result), "links");
    const made = state.me.links.find((l) => l.provider_id === linkedTo);
    status(text(made && !made.verified ? "t-linked-claim" : "t-linked-ok"));
  } catch (error) {
    $("library-password").value = "";
    status("");
    const info = error.info || {};
    if (info.final) return showError(info);
    linkError([info.title, info.message].filter(Boolean).join(": ") || info.code);
  } finally {
    state.busy = false;
  }
}

// A link verified by the library answers with that link alone: the screen shown, with
// the link in its list and the facility marked linked.
function withLinks(result) {
  if (!result.link) return result;
  const added = result.link;
  const links = state.me.links.filter((l) => l.provider_id !== added.provider_id);
  const mark = (p) => (p.id === added.provider_id ? { ...p, linked: true } : p);
  return {
    ...state.me,
    created: false,
    can_reroll: false,
    links: [...links, added],
    providers: state.me.providers.map(mark),
  };
}

async function unlink(providerId) {
  try {
    showMe((await flow.act("unlink", { provider_id: providerId })).result, "links");
  } catch (error) {
    showError(error.info || {});
  }
}

async function reroll() {
  try {
    showMe((await flow.act("reroll")).result);
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

function wordFor(attr, value) {
  const el = $("points-words").querySelector(`[data-${attr}="${value}"]`);
  return el ? el.textContent : "";
}

function pts(n) {
  return Number(n).toLocaleString(document.documentElement.lang || "ja");
}

// One line of the statement: when, what it was (grant, payment and where, donation...),
// the other side, +/- points, and the balance after.
function statementLine(t) {
  const what = [wordFor("kind", t.kind), t.counterparty];
  const detail = t.detail ? wordFor("detail", t.detail) : "";
  if (detail) what.push(`· ${detail}`);
  if (t.status === "pending") what.push(`[${wordFor("word", "pending")}]`);
  const li = item(`${t.date} ${what.filter(Boolean).join(" ")} ${t.points > 0 ? "+" : ""}${pts(t.points)}`);
  li.dataset.kind = t.kind;
  return li;
}

// One month and category of history past the refund window: totals, no merchant.
function monthLine(t) {
  const what = wordFor("detail", t.category) || wordFor("word", t.category);
  const parts = [t.month, what];
  if (t.paid) parts.push(`-${pts(t.paid)}`);
  if (t.received) parts.push(`+${pts(t.received)}`);
  const li = item(parts.join(" "));
  li.dataset.month = t.month;
  return li;
}

async function showPoints() {
  let body;
  try {
    body = (await flow.read("points")).result;
  } catch (error) {
    showError(error.info);
    return;
  }
  const list = $("points-list");
  const words = list.dataset;
  list.replaceChildren();
  for (const m of body.municipalities) {
    list.append(item(m.municipality, "h2"), item(`${words.balance}: ${pts(m.spendable)}`, "p"));
    if (m.pending) list.append(item(`${words.held}: ${pts(m.pending)}`, "p"));
    const lots = document.createElement("ul");
    lots.className = "lot-list";
    for (const lot of m.lots) lots.append(item(`${pts(lot.remaining)} (${words.expires} ${lot.expires_at})`));
    const moves = document.createElement("ul");
    moves.className = "statement";
    for (const t of m.transfers) moves.append(statementLine(t));
    list.append(item(words.lots, "h3"), lots, item(words.history, "h3"), moves);
    if (m.months && m.months.length) {
      // Past the refund window the platform keeps only these totals (docs/privacy.md).
      const months = document.createElement("ul");
      months.className = "statement monthly";
      for (const t of m.months) months.append(monthLine(t));
      list.append(item(words.months, "h3"), item(words.monthsHint, "p"), months);
    }
  }
  $("no-points").hidden = body.municipalities.length > 0;
  show("points");
}

// -- giving to a cause or a project (the flow keeps what is given from "Next" on) -----

function giveError(id, error) {
  const info = (error && error.info) || {};
  if (info.final) return showError(info);
  $(id).textContent = [info.title, info.message].filter(Boolean).join(": ") || info.code || String(error);
  $(id).hidden = false;
  $(id).focus?.();
}

function causeItem(c, spendable, words) {
  const li = document.createElement("li");
  const label = document.createElement("label");
  const radio = document.createElement("input");
  radio.type = "radio";
  radio.name = "cause";
  radio.value = String(c.id);
  const name = document.createElement("strong");
  name.textContent = c.name;
  const about = [c.municipality, c.kind === "project" ? words.project : words.cause];
  if (c.kind === "project") {
    about.push(`${words.raised} ${pts(c.raised)} / ${words.goal} ${pts(c.goal)}`, `${words.until} ${c.ends}`);
  }
  about.push(`${words.available} ${pts(spendable[String(c.municipality_id)] ?? 0)}`);
  label.append(radio, " ", name, item(about.join(" · "), "span"));
  if (c.description) label.append(item(c.description, "span"));
  li.append(label);
  return li;
}

async function showGive() {
  let body;
  try {
    body = (await flow.read("causes")).result;
  } catch (error) {
    showError(error.info);
    return;
  }
  const list = $("cause-list");
  list.replaceChildren();
  for (const c of body.causes) list.append(causeItem(c, body.spendable, list.dataset));
  $("no-causes").hidden = body.causes.length > 0;
  $("give-form").hidden = body.causes.length === 0;
  $("give-error").hidden = true;
  $("give-points").value = "";
  show("give");
}

async function prepareGive(event) {
  event.preventDefault();
  const picked = $("give-form").querySelector('input[name="cause"]:checked');
  if (!picked) return giveError("give-error", { info: { message: $("t-give-pick").textContent } });
  const points = Number($("give-points").value);
  if (!Number.isInteger(points) || points <= 0) {
    return giveError("give-error", { info: { message: $("t-give-amount").textContent } });
  }
  if (state.busy) return;
  state.busy = true;
  try {
    const ready = (await flow.act("give_prepare", { cause_id: Number(picked.value), points })).result;
    $("give-confirm-cause").textContent = ready.cause;
    $("give-confirm-points").textContent = pts(ready.points);
    $("give-confirm-after").textContent = pts(ready.after);
    $("give-confirm-error").hidden = true;
    show("give-confirm");
  } catch (error) {
    giveError("give-error", error);
  } finally {
    state.busy = false;
  }
}

async function confirmGive() {
  if (state.busy) return;
  state.busy = true;
  try {
    const r = (await flow.act("give_confirm")).result.receipt;
    $("receipt-number").textContent = String(r.number);
    $("receipt-date").textContent = r.date;
    $("receipt-cause").textContent = r.cause;
    $("receipt-points").textContent = pts(r.points);
    $("receipt-balance").textContent = pts(r.balance);
    show("give-receipt");
  } catch (error) {
    giveError("give-confirm-error", error);
  } finally {
    state.busy = false;
  }
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
  } else if (target.dataset.action === "renew") {
    startRenewal();
  } else if (target.dataset.action === "points") {
    showPoints();
  } else if (target.dataset.action === "give") {
    showGive();
  } else if (target.dataset.goto) {
    if (target.dataset.goto === "link") state.provider = null;
    if (state.me) showMe(state.me, target.dataset.goto);
    if (target.dataset.goto === "link" && state.me) finder.reset();
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
$("link-claim").addEventListener("click", (event) => submitLink(event, { claim: true }));
$("give-form").addEventListener("submit", prepareGive);
$("give-form").addEventListener("input", () => {
  $("give-error").hidden = true;
});
$("give-confirm").addEventListener("click", confirmGive);
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

async function startRenewal() {
  if (state.busy) return;
  await flow.cancel();
  reset();
  state.renew = "old";
  show("renew-old");
  try {
    const s = await flow.status(); // the old card may be on the reader already
    if (s.card) {
      state.seenEpoch = null;
      cardInserted(s.card.epoch);
    }
  } catch {
    // the status poll and the socket will tell
  }
}

async function resume() {
  // After a language switch (a reload), pick up the card session where it was.
  try {
    const reply = await flow.current();
    const s = await flow.status();
    if (reply.flow.state !== "verified" && reply.flow.state !== "done") throw new Error("not yet");
    if (reply.result && reply.result.stage === "new_card") {
      state.renew = "new"; // between the two cards of "I have a new card"
      state.seenEpoch = s.card ? s.card.epoch : null;
      show("renew-new");
    } else {
      state.epoch = s.card ? s.card.epoch : null;
      state.seenEpoch = state.epoch;
      showMe(reply.result);
    }
  } catch {
    show("start");
  }
  connect(onEvent, 2000);
  poll();
  setInterval(poll, POLL_MS);
  touched();
}

renderPin();
resume();
