// The checkout page: card and PIN through this browser's own card reader (the home
// terminal), confirm, then back to the shop with the signed result the server made.
// The payment is the card flow's `checkout` purpose, kept on the server (/flow,
// flow.js): this tab holds the checkout's id and what it shows, nothing more.
import { call, flow } from "./flow.js";
import { createPinScreens } from "./pin-screens.js";

const root = document.getElementById("checkout");
const checkoutId = root.dataset.checkout;
const { state, show, fail, showPrompt, guarded } = createPinScreens({
  root,
  errorBox: document.getElementById("checkout-error"),
  heading: "h2",
  lastTry: document.getElementById("checkout-last-try"),
  confirmLast: document.getElementById("checkout-confirm-last"),
  // A refusal that ends the step goes back to the start (a checkout no longer open has
  // no PIN step: its page says so and stays).
  onFinal: () => root.querySelector('[data-screen="pin"]') && show("start"),
  onVerified: (result) => {
    document.getElementById("confirm-points").textContent = result.points.toLocaleString();
    document.getElementById("confirm-balance").textContent = result.balance.toLocaleString();
    document.getElementById("checkout-pay").disabled = !result.enough;
    document.getElementById("confirm-short").hidden = result.enough;
    show("confirm");
  },
});
window.checkout = state; // tests read the screen

document.getElementById("checkout-begin")?.addEventListener("click", () =>
  guarded(async () => {
    const reply = await flow.begin("checkout", { checkout: checkoutId });
    showPrompt(reply.pin);
  }),
);

document.getElementById("checkout-pay")?.addEventListener("click", () =>
  guarded(async () => {
    const paid = (await flow.act("pay")).result;
    document.getElementById("paid-points").textContent = paid.points.toLocaleString();
    document.getElementById("paid-balance").textContent = paid.balance.toLocaleString();
    show("paid");
    await flow.cancel(); // the card flow ends here; the payment is made
    setTimeout(() => location.assign(paid.redirect), 1500);
  }),
);

for (const button of root.querySelectorAll('[data-action="cancel"]')) {
  button.addEventListener("click", () =>
    guarded(async () => {
      await flow.cancel();
      try {
        const reply = await call("POST", `/checkout/${encodeURIComponent(checkoutId)}/cancel`, {});
        location.assign(reply.redirect);
      } catch (error) {
        fail(error.info || {});
      }
    }),
  );
}
