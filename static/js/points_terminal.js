// The merchant terminal: amount, card, PIN pad (sealed to the bridge), confirm, receipt.
// Same pattern as kiosk.js: the PIN is sealed here (seal.js) and never leaves in clear.
import { sealPin } from "./seal.js";

const root = document.getElementById("till");
const api = root.dataset.api;
const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
const errorBox = document.getElementById("till-error");
const state = { pin: "", prompt: null, busy: false };

function show(name) {
  for (const section of root.querySelectorAll("[data-screen]")) {
    section.hidden = section.dataset.screen !== name;
  }
  root.querySelector(`[data-screen="${name}"] h1`)?.focus();
}

function fail(error) {
  errorBox.textContent = [error.title, error.explanation, error.action].filter(Boolean).join(" ");
  errorBox.hidden = false;
  if (error.final !== false) show("amount");
}

async function call(path, body) {
  const response = await fetch(api + path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
    body: JSON.stringify(body || {}),
  });
  const data = await response.json().catch(() => ({ error: { explanation: response.statusText } }));
  if (!response.ok) throw data.error || {};
  return data;
}

function drawPin() {
  const dots = document.querySelectorAll("#pin-display span");
  dots.forEach((dot, i) => dot.classList.toggle("filled", i < state.pin.length));
  root.querySelector('[data-pin="ok"]').disabled = state.pin.length !== 4;
}

async function beginPin() {
  state.prompt = await call("pin/begin");
  state.pin = "";
  drawPin();
  show("pin");
}

async function submitPin() {
  const { bridge_id: bridgeId, command_id: commandId, seal_public_key: key } = state.prompt;
  const sealed = await sealPin(key, state.pin, { bridgeId, commandId });
  state.pin = ""; // never kept after sealing
  drawPin();
  const lastTry = state.prompt.tries_left === 1;
  if (lastTry && !window.confirm(root.dataset.lastTry)) {
    await call("end");
    show("amount");
    return;
  }
  const shown = await call("pin/complete", { sealed, confirm_last_try: lastTry });
  document.getElementById("confirm-points").textContent = shown.points;
  document.getElementById("confirm-balance").textContent = shown.balance;
  document.getElementById("confirm").disabled = !shown.enough;
  show("confirm");
}

async function guarded(step) {
  if (state.busy) return;
  state.busy = true;
  errorBox.hidden = true;
  try {
    await step();
  } catch (error) {
    fail(error);
  } finally {
    state.busy = false;
  }
}

document.getElementById("amount-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const points = Number.parseInt(document.getElementById("points").value, 10);
  guarded(async () => {
    await call("start", { points });
    await beginPin();
  });
});

root.querySelector(".pin-pad").addEventListener("click", (event) => {
  const key = event.target.closest("button");
  if (!key) return;
  if (key.dataset.digit && state.pin.length < 4) state.pin += key.dataset.digit;
  if (key.dataset.pin === "clear") state.pin = "";
  drawPin();
  if (key.dataset.pin === "ok") guarded(submitPin);
});

document.getElementById("confirm").addEventListener("click", () =>
  guarded(async () => {
    const receipt = await call("confirm");
    document.getElementById("receipt-points").textContent = receipt.points;
    document.getElementById("receipt-balance").textContent = receipt.balance;
    show("receipt");
  }),
);

for (const button of root.querySelectorAll('[data-action="end"]')) {
  button.addEventListener("click", () =>
    guarded(async () => {
      await call("end");
      document.getElementById("points").value = "";
      show("amount");
    }),
  );
}
