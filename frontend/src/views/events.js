// Every event of the deployment, newest first, filtered by kind, with block and transaction.
import { CATEGORIES, categoryOf, feed } from "./parts.js";

const PAGE = 100;
const state = { category: "all", limit: PAGE };

export function mount(root, { onChange }) {
  state.limit = PAGE;
  root.innerHTML = `<section class="card">
    <div class="card-head"><h2>Events <span class="muted" id="event-count"></span></h2>
      <div class="filters" id="event-filters" role="tablist">${["all", ...Object.keys(CATEGORIES)].map((c) =>
        `<button data-category="${c}" role="tab">${c}</button>`).join("")}</div></div>
    <div id="event-feed"></div>
    <button class="more" id="more-events" hidden>Show older events</button></section>`;
  root.querySelector("#event-filters").addEventListener("click", (e) => {
    const button = e.target.closest("button");
    if (!button) return;
    state.category = button.dataset.category;
    state.limit = PAGE;
    onChange();
  });
  root.querySelector("#more-events").addEventListener("click", () => {
    state.limit += PAGE;
    onChange();
  });
}

export function update(root, model) {
  const all = model.history.events;
  const filtered = state.category !== "all";
  const events = filtered ? all.filter((e) => categoryOf(e) === state.category) : all;
  root.querySelectorAll("#event-filters button").forEach((b) => b.setAttribute("aria-selected", b.dataset.category === state.category));
  root.querySelector("#event-count").textContent = `${events.length.toLocaleString("en-US")}${filtered ? ` of ${all.length.toLocaleString("en-US")}` : ""}`;
  root.querySelector("#event-feed").innerHTML = feed(events, { limit: state.limit }).text;
  root.querySelector("#more-events").hidden = events.length <= state.limit;
}
