// At home, while the one-time code is shown: ask the platform every 2 s whether the
// bridge has paired; then reload, and the page is the kiosk flow on this browser's own
// card reader (kiosk.js). Only an answer that says the state changed reloads: a moment's
// "try again" (503 while a service restarts) or a lost connection is asked again later,
// never reloaded into an error page that would not ask again.
const root = document.getElementById("home");
const POLL_MS = 2000;

async function check() {
  try {
    const response = await fetch(root.dataset.status, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    const body = response.ok ? await response.json() : null;
    if (typeof body?.state === "string" && body.state !== root.dataset.state) {
      location.reload();
      return;
    }
  } catch {
    /* next time */
  }
  setTimeout(check, POLL_MS);
}

setTimeout(check, POLL_MS);
