// The merchant's till: amount, card, PIN pad (sealed to the bridge), confirm, receipt.
// The payment is the card flow's `pay` purpose, kept on the server (/flow, flow.js): this
// tab never learns who pays, only the amount, the balance and the receipt.
import { flow } from "./flow.js";
import { createPinScreens } from "./pin-screens.js";

const root = document.getElementById("till");
const { state, show, guarded, showPrompt } = createPinScreens({
  root,
  errorBox: document.getElementById("till-error"),
  heading: "h1",
  lastTry: document.getElementById("till-last-try"),
  confirmLast: document.getElementById("till-confirm-last"),
  onFinal: () => show("amount"),
  onVerified: (result) => {
    document.getElementById("confirm-points").textContent = result.points;
    document.getElementById("confirm-balance").textContent = result.balance;
    document.getElementById("confirm").disabled = !result.enough;
    show("confirm");
  },
});
window.till = state; // tests read the screen

document.getElementById("amount-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const points = Number.parseInt(document.getElementById("points").value, 10);
  guarded(async () => {
    const reply = await flow.begin("pay", { points });
    showPrompt(reply.pin);
  });
});

document.getElementById("confirm").addEventListener("click", () =>
  guarded(async () => {
    const receipt = (await flow.act("confirm")).result;
    document.getElementById("receipt-points").textContent = receipt.points;
    document.getElementById("receipt-balance").textContent = receipt.balance;
    document.getElementById("refunded").hidden = true;
    document.getElementById("refund").disabled = false;
    show("receipt");
  }),
);

document.getElementById("refund").addEventListener("click", () =>
  guarded(async () => {
    const refunded = (await flow.act("refund")).result;
    document.getElementById("refunded-points").textContent = refunded.refunded;
    document.getElementById("receipt-balance").textContent = refunded.balance;
    document.getElementById("refunded").hidden = false;
    document.getElementById("refund").disabled = true; // once: the payment is back
  }),
);

for (const button of root.querySelectorAll('[data-action="end"]')) {
  button.addEventListener("click", () =>
    guarded(async () => {
      await flow.cancel();
      document.getElementById("points").value = "";
      show("amount");
    }),
  );
}

show("amount");
