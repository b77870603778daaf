// Finding a facility among thousands on the kiosk's link screen: a search box (name,
// reading in kana as typed, ISIL) and prefecture -> municipality -> facility browsing.
// Every answer comes from the server, one bounded page at a time (the flow's read step
// `facilities`, webapp/kiosk/purposes.py); nothing is shipped whole to the page. The
// result count is announced in a live region (#facility-count).
import { flow } from "./flow.js";

const $ = (id) => document.getElementById(id);
const DEBOUNCE_MS = 250;

export function createFinder({ text, onPick, onError }) {
  const finder = {
    seq: 0, // answers that arrive out of order are dropped
    timer: null,
    query: "",
    prefectures: null,
    prefecture: null, // {code, name} while browsing it
    municipality: null,
    page: 0,
    shown: [],
  };

  async function ask(params) {
    const mine = ++finder.seq;
    const reply = await flow.act("facilities", params);
    return mine === finder.seq ? reply.result : null;
  }

  function announce(message) {
    $("facility-count").textContent = message;
  }

  function facilityButton(p) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "provider-button";
    button.dataset.providerId = String(p.id);
    const name = document.createElement("span");
    name.textContent = p.linked ? `${p.name} (${text("t-linked")})` : p.name;
    const sub = document.createElement("span");
    sub.className = "provider-sub";
    sub.textContent = [p.kana, p.place, p.code].filter(Boolean).join(" · ");
    const inner = document.createElement("span");
    inner.append(name, sub);
    button.append(inner);
    button.disabled = p.linked;
    button.setAttribute("aria-pressed", "false");
    button.addEventListener("click", () => onPick(p));
    return button;
  }

  function placeButton(label, onClick, extra = "") {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "place-button";
    button.textContent = label;
    if (extra) button.setAttribute("aria-label", `${label} ${extra}`);
    button.addEventListener("click", onClick);
    return button;
  }

  function showFacilities(result, append) {
    const list = $("facility-results");
    if (!append) {
      list.replaceChildren();
      finder.shown = [];
    }
    for (const p of result.results) {
      finder.shown.push(p);
      list.append(facilityButton(p));
    }
    $("facility-more").hidden = !result.more;
    return finder.shown.length;
  }

  function countMessage(result, shown) {
    if (result.total === 0) return text("t-found-none");
    const found = result.capped
      ? text("t-found-many", { n: result.total })
      : text("t-found", { n: result.total });
    return shown < result.total ? `${found} ${text("t-showing", { shown, n: result.total })}` : found;
  }

  function clearResults() {
    $("facility-results").replaceChildren();
    $("facility-more").hidden = true;
    finder.shown = [];
  }

  async function search(append = false) {
    finder.page = append ? finder.page + 1 : 0;
    const result = await ask({ q: finder.query, page: finder.page });
    if (!result) return;
    $("facility-browse").hidden = true;
    const shown = showFacilities(result, append);
    announce(countMessage(result, shown));
  }

  async function showPrefectures() {
    finder.prefecture = null;
    finder.municipality = null;
    clearResults();
    $("facility-browse").hidden = false;
    $("facility-up").hidden = true;
    if (!finder.prefectures) {
      const result = await ask({});
      if (!result) return;
      finder.prefectures = result.results;
    }
    const places = $("facility-places");
    places.replaceChildren(
      ...finder.prefectures.map((p) => placeButton(p.name, () => openPrefecture(p))),
    );
    places.hidden = false;
  }

  async function openPrefecture(prefecture, focus = true) {
    const result = await ask({ prefecture: prefecture.code });
    if (!result) return;
    finder.prefecture = prefecture;
    finder.municipality = null;
    clearResults();
    const up = $("facility-up");
    up.textContent = text("t-back-prefectures");
    up.hidden = false;
    $("facility-places").hidden = false;
    $("facility-places").replaceChildren(
      ...result.results.map((m) =>
        placeButton(m.name, () => openMunicipality(m), `(${m.count})`),
      ),
    );
    announce(text("t-municipalities", { place: prefecture.name, n: result.total }));
    if (focus) $("h-browse").focus();
  }

  async function openMunicipality(municipality, append = false) {
    finder.page = append ? finder.page + 1 : 0;
    const result = await ask({ municipality: municipality.code, page: finder.page });
    if (!result) return;
    finder.municipality = municipality;
    const up = $("facility-up");
    up.textContent = text("t-back-municipalities", { place: finder.prefecture?.name || "" });
    up.hidden = false;
    $("facility-places").hidden = true;
    const shown = showFacilities(result, append);
    const inPlace = text("t-in-place", { place: municipality.name, n: result.total });
    announce(shown < result.total ? `${inPlace} ${text("t-showing", { shown, n: result.total })}` : inPlace);
    if (!append) $("h-browse").focus();
  }

  async function guarded(work) {
    try {
      await work();
    } catch (error) {
      onError(error);
    }
  }

  $("facility-q").addEventListener("input", () => {
    clearTimeout(finder.timer);
    finder.query = $("facility-q").value.trim();
    finder.timer = setTimeout(() => {
      if (finder.query) return guarded(() => search());
      announce("");
      return guarded(showPrefectures);
    }, DEBOUNCE_MS);
  });
  $("facility-q").addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return; // the platform keyboard's search key: search now
    event.preventDefault();
    clearTimeout(finder.timer);
    finder.query = $("facility-q").value.trim();
    if (finder.query) guarded(() => search());
  });
  $("facility-more").addEventListener("click", () =>
    guarded(() =>
      finder.municipality ? openMunicipality(finder.municipality, true) : search(true),
    ),
  );
  $("facility-up").addEventListener("click", () =>
    guarded(async () => {
      if (finder.municipality && finder.prefecture) {
        await openPrefecture(finder.prefecture);
      } else {
        await showPrefectures();
        $("h-browse").focus();
      }
    }),
  );

  return {
    // The link screen opens: an empty box and the prefectures.
    reset() {
      clearTimeout(finder.timer);
      $("facility-q").value = "";
      finder.query = "";
      announce("");
      return guarded(showPrefectures);
    },
    // Mark the chosen facility among the results.
    mark(providerId) {
      for (const button of $("facility-results").querySelectorAll("button")) {
        button.setAttribute("aria-pressed", String(button.dataset.providerId === String(providerId)));
      }
    },
  };
}
