// The card flow's one JSON API (/flow/...), for every page where a card is put down:
// the counter, the kiosk, home and the till. The server keeps the flow; this tab keeps
// nothing of it but what it shows. Every refusal comes back in one format, an HTTP
// status and {error: {code, title, message, action, final, tries_left?, pin?}}, thrown
// here as a FlowError whose `info` is that body.
import { sealPin } from "./seal.js";

const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";

export class FlowError extends Error {
  constructor(info, status) {
    super(info.code || String(status));
    this.info = info;
    this.status = status;
  }
}

// No answer at all (a worker gone, the network), or a proxy's page instead of ours (502,
// 504): "temporarily unavailable, try again", in the words the page was drawn with
// (base.html). Not final: the flow is still on the server; the same step may be sent again
// (a payment's confirm pays once: its key is kept with the flow).
function unavailable() {
  try {
    const words = JSON.parse(document.getElementById("unavailable-words").textContent);
    return { ...words, code: "transport", final: false };
  } catch {
    return { code: "transport", final: false };
  }
}

export async function call(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
      body: method === "GET" || body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    throw new FlowError(unavailable(), 0);
  }
  let data = {};
  try {
    data = await response.json();
  } catch {
    data = { error: unavailable() };
  }
  if (!response.ok) throw new FlowError(data.error || { code: String(response.status), final: true }, response.status);
  return data;
}

export const flow = {
  begin: (purpose, params = {}) => call("POST", "/flow/begin", { ...params, purpose }),
  prompt: () => call("POST", "/flow/pin/begin", {}),
  current: () => call("GET", "/flow"),
  cancel: () => call("POST", "/flow/cancel", {}).catch(() => null),
  read: (step) => call("GET", `/flow/do/${step}`),
  act: (step, params = {}) => call("POST", `/flow/do/${step}`, params),
  status: () => call("GET", "/terminal/status"),
};

/**
 * Seal the PIN to the bridge named in `pin` (the prompt) and send it; the clear PIN
 * goes no further than this function.
 */
export async function completePin(pin, digits, confirmLastTry) {
  const sealed = await sealPin(pin.seal_public_key, digits, {
    bridgeId: pin.bridge_id,
    commandId: pin.command_id,
  });
  return call("POST", "/flow/pin/complete", {
    sealed,
    command_id: pin.command_id,
    confirm_last_try: Boolean(confirmLastTry),
  });
}

/** The tab's live link: card and bridge events pushed by the platform. */
export function connect(onEvent, retryMs = 1000) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws/terminal`);
  ws.onmessage = (message) => onEvent(JSON.parse(message.data));
  ws.onclose = () => setTimeout(() => connect(onEvent, retryMs), retryMs);
  return ws;
}
