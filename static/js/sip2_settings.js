// The library system (SIP2) settings page: the login and terminal passwords are typed
// into fields that are never posted. On submit each one is sealed (seal.js) to the chosen
// connector bridge's key, bound to the library system's address, and only the envelope
// goes to the platform, which cannot open it.
import { sealSecret, sip2Target } from "./seal.js";

const form = document.getElementById("sip2-form");
const $ = (id) => document.getElementById(id);

async function sealField(input, hidden, purpose, bridge, target) {
  const value = input.value;
  input.value = ""; // the clear password leaves the field at once
  if (!value) {
    hidden.value = "";
    return;
  }
  const envelope = await sealSecret(bridge.sealKey, value, {
    bridgeId: bridge.bridgeId,
    purpose,
    binding: target,
  });
  hidden.value = JSON.stringify(envelope);
}

if (form) {
  let sealed = false;
  form.addEventListener("submit", async (event) => {
    if (sealed) return; // the second, programmatic submit goes through
    event.preventDefault();
    const option = $("terminal_id").selectedOptions[0];
    const bridge = { bridgeId: option?.dataset.bridgeId, sealKey: option?.dataset.sealKey };
    const target = sip2Target($("host").value.trim(), $("port").value.trim(), $("tls").checked);
    try {
      await sealField($("login-password"), $("login_password_sealed"), "sip2-login", bridge, target);
      await sealField(
        $("terminal-password"),
        $("terminal_password_sealed"),
        "sip2-terminal",
        bridge,
        target,
      );
      $("sealed_for").value = bridge.bridgeId || "";
    } catch (error) {
      console.error("sealing failed", error);
      $("seal-error").hidden = false;
      return;
    }
    sealed = true;
    HTMLFormElement.prototype.submit.call(form); // no second submit event
  });
}
