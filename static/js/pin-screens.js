// A terminal page made of screens with a PIN step (the till, the online checkout): the
// screen shown, the error box, the PIN pad (the digits never kept after sealing), the
// last-try confirmation, and one step at a time. The page adds its own steps around it.
import { completePin } from "./flow.js";

export function createPinScreens(parts) {
  const { root, errorBox, heading, lastTry, confirmLast, onFinal, onVerified } = parts;
  const state = { pin: "", prompt: null, busy: false, screen: root.dataset.current };

  function show(name) {
    for (const section of root.querySelectorAll("[data-screen]")) {
      section.hidden = section.dataset.screen !== name;
    }
    state.screen = name;
    root.dataset.current = name;
    root.querySelector(`[data-screen="${name}"] ${heading}`)?.focus();
  }

  function fail(info) {
    errorBox.textContent = [info.title, info.message, info.action].filter(Boolean).join(" ");
    errorBox.hidden = false;
    if (info.final !== false) onFinal();
  }

  function drawPin() {
    const dots = root.querySelectorAll("#pin-display span");
    dots.forEach((dot, i) => dot.classList.toggle("filled", i < state.pin.length));
    root.querySelector('[data-pin="ok"]').disabled = state.pin.length !== 4;
  }

  function showPrompt(prompt, info) {
    state.prompt = prompt;
    state.pin = "";
    lastTry.hidden = !prompt.last_try;
    confirmLast.checked = false;
    drawPin();
    show("pin");
    if (info) fail({ ...info, final: false });
  }

  async function submitPin() {
    const last = state.prompt.last_try;
    if (last && !confirmLast.checked) {
      fail({ title: root.dataset.lastTry, final: false });
      return;
    }
    const digits = state.pin;
    state.pin = ""; // never kept after sealing
    drawPin();
    try {
      const reply = await completePin(state.prompt, digits, last);
      onVerified(reply.result);
    } catch (error) {
      const info = error.info || {};
      if (info.code === "wrong_pin" && info.pin) showPrompt(info.pin, info);
      else throw error;
    }
  }

  async function guarded(step) {
    if (state.busy) return;
    state.busy = true;
    errorBox.hidden = true;
    try {
      await step();
    } catch (error) {
      fail(error.info || {});
    } finally {
      state.busy = false;
    }
  }

  root.querySelector(".pin-pad")?.addEventListener("click", (event) => {
    const key = event.target.closest("button");
    if (!key) return;
    if (key.dataset.digit && state.pin.length < 4) state.pin += key.dataset.digit;
    if (key.dataset.pin === "clear") state.pin = "";
    drawPin();
    if (key.dataset.pin === "ok") guarded(submitPin);
  });

  return { state, show, fail, showPrompt, guarded };
}
