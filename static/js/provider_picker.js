// The new-account form's provider-code field: as the admin types part of a name, its
// reading or a code, up to 20 matching providers of the admin's own (the server scopes
// them) are offered in the field's <datalist>. The field still takes a typed code, and
// the server checks it whatever was picked.
const field = document.getElementById("provider_code");
const list = document.getElementById("provider-options");

if (field && list && field.dataset.optionsUrl) {
  let timer = 0;
  let asked = "";
  field.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = field.value.trim();
      if (!q || q === asked) return;
      asked = q;
      const url = `${field.dataset.optionsUrl}?q=${encodeURIComponent(q)}`;
      try {
        const reply = await fetch(url, { headers: { Accept: "application/json" } });
        if (!reply.ok || q !== field.value.trim()) return;
        const { providers } = await reply.json();
        list.replaceChildren(
          ...providers.map((p) => {
            const option = document.createElement("option");
            option.value = p.code;
            option.label = `${p.name} (${p.code})`;
            option.textContent = p.name;
            return option;
          }),
        );
      } catch {
        // No suggestions: the code is typed as before.
      }
    }, 200);
  });
}
