// GET /: one self-contained page (inline CSS and script, no external resources) that
// reads the JSON routes and the event stream, and updates itself without reload.

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

const CSS = `
:root{--bg:#f7f7f5;--fg:#1d232a;--mute:#6b7280;--card:#fff;--line:#e5e7eb;--accent:#2563eb;
--alive:#16a34a;--suspect:#d97706;--dead:#dc2626;--left:#9ca3af;color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--bg:#111418;--fg:#e5e7eb;--mute:#9ca3af;--card:#1a1f25;
--line:#2a313a;--accent:#60a5fa}}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,sans-serif;background:var(--bg);color:var(--fg)}
header{display:flex;gap:1rem;align-items:baseline;flex-wrap:wrap;padding:1rem 1.5rem;border-bottom:1px solid var(--line)}
h1{font-size:1.15rem;margin:0}h2{font-size:.8rem;text-transform:uppercase;letter-spacing:.06em;color:var(--mute);margin:0 0 .6rem}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(420px,100%),1fr));gap:1rem;padding:1rem 1.5rem}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:1rem;overflow:auto;max-height:60vh;min-width:0}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid var(--line);vertical-align:top;overflow-wrap:anywhere}
th{font-weight:600;color:var(--mute);font-size:.8rem;overflow-wrap:normal}code,.mono{font-family:ui-monospace,Menlo,monospace;font-size:.85rem}
.dot{display:inline-block;width:.6rem;height:.6rem;border-radius:50%;margin-right:.4rem;background:var(--left)}
.alive .dot{background:var(--alive)}.suspect .dot{background:var(--suspect)}.dead .dot{background:var(--dead)}
.mute{color:var(--mute)}.pill{border:1px solid var(--line);border-radius:999px;padding:.05rem .55rem;font-size:.8rem}
.pill.live{border-color:var(--alive);color:var(--alive)}.pill.down{border-color:var(--dead);color:var(--dead)}
#keys{table-layout:fixed}#keys th:nth-child(1){width:34%}#keys th:nth-child(3){width:16%}#keys th:nth-child(4){width:6.5rem}
.value{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}td.mute{white-space:nowrap}
@keyframes flash{from{background:color-mix(in srgb,var(--accent) 25%,transparent)}to{background:transparent}}
.flash{animation:flash 1.2s ease-out}#stream li{list-style:none;padding:.25rem 0;border-bottom:1px solid var(--line);
white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
#stream{margin:0;padding:0}.del{text-decoration:line-through}
@media (max-width:480px){header,main{padding-left:.75rem;padding-right:.75rem}th,td{padding:.3rem}}`;

const SCRIPT = `
const $ = (s) => document.querySelector(s);
function el(tag, props, ...kids) {
  const e = Object.assign(document.createElement(tag), props);
  for (const k of kids) e.append(k instanceof Node ? k : String(k ?? ""));
  return e;
}
const ago = (t) => t == null ? "never" : Math.max(0, Math.round((Date.now() - t) / 1000)) + " s ago";
const show = (v) => JSON.stringify(v);
const getJson = async (path) => (await fetch(path, { headers: { accept: "application/json" } })).json();
async function members() {
  const list = await getJson("members");
  $("#members tbody").replaceChildren(...list.map((m) => el("tr", { className: m.status },
    el("td", {}, el("span", { className: "dot" }), m.id + (m.self ? " (this)" : "")),
    el("td", { className: "mono" }, m.address), el("td", {}, m.status),
    el("td", {}, m.incarnation), el("td", { className: "mute" }, m.self ? "—" : ago(m.lastHeard)))));
  $("#alive").textContent = list.filter((m) => m.status === "alive").length + " alive";
}
async function sync() {
  const s = await getJson("sync");
  $("#root").textContent = s.root;
  $("#counts").textContent = s.keys + " keys · " + s.tombstones + " tombstones";
  $("#peers tbody").replaceChildren(...s.peers.map((p) => el("tr", {},
    el("td", {}, p.id), el("td", { className: "mute" }, ago(p.lastInSync)),
    el("td", { className: "mute" }, ago(p.lastRepair)), el("td", {}, p.entriesReceived + " / " + p.entriesSent))));
}
function keyRow(k, flash) {
  let row = [...$("#keys tbody").children].find((r) => r.dataset.key === k.key);
  if (k.deleted) return row?.remove();
  const cells = [el("td", { className: "mono key" }, k.key), el("td", { className: "mono value", title: show(k.value) }, show(k.value)),
    el("td", {}, k.writer), el("td", { className: "mute" }, new Date(k.wall).toLocaleTimeString())];
  if (!row) {
    row = el("tr");
    row.dataset.key = k.key;
    const after = [...$("#keys tbody").children].find((r) => r.dataset.key > k.key);
    $("#keys tbody").insertBefore(row, after ?? null);
  }
  row.replaceChildren(...cells);
  if (flash) { row.classList.remove("flash"); void row.offsetWidth; row.classList.add("flash"); }
}
async function keys() {
  const d = await getJson("usr");
  $("#keys tbody").replaceChildren();
  d.entries.forEach((k) => keyRow(k, false));
  $("#more").textContent = d.truncated ? "(first " + d.entries.length + " keys)" : "";
}
function stream(c) {
  const li = el("li", {}, el("span", { className: "mute" }, new Date().toLocaleTimeString() + " "),
    el("span", { className: "pill" }, c.origin), " ", el("code", { className: c.deleted ? "del" : "" }, c.key),
    c.deleted ? " deleted" : " = ", c.deleted ? "" : el("code", {}, show(c.value)), el("span", { className: "mute" }, " by " + c.writer));
  $("#stream").prepend(li);
  while ($("#stream").children.length > 100) $("#stream").lastChild.remove();
}
const events = new EventSource("events");
events.onopen = async () => {
  $("#live").textContent = "live"; $("#live").className = "pill live";
  await Promise.all([keys(), members(), sync()]);
  document.body.dataset.live = "true";
};
events.onerror = () => { $("#live").textContent = "reconnecting"; $("#live").className = "pill down"; document.body.dataset.live = "false"; };
let syncSoon;
events.addEventListener("change", (ev) => {
  const c = JSON.parse(ev.data);
  keyRow(c, true);
  stream(c);
  syncSoon ??= setTimeout(() => { syncSoon = undefined; sync(); }, 250);
});
events.addEventListener("member", () => members());
setInterval(() => { members(); sync(); }, 2000);`;

/** The dashboard of member `id`; `nonce` allows its inline style and script under the CSP. */
export function dashboardPage(id: string, nonce: string): string {
  const name = escapeHtml(id);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="icon" href="data:,"><title>${name} · Gossip KV</title><style nonce="${nonce}">${CSS}</style></head>
<body><header><h1>Gossip KV · <span class="mono">${name}</span></h1>
<span id="live" class="pill">connecting</span><span id="alive" class="mute"></span>
<span class="mute">root <code id="root"></code></span><span id="counts" class="mute"></span></header>
<main>
<section><h2>Members</h2><table id="members"><thead><tr><th>id</th><th>address</th><th>status</th>
<th>inc.</th><th>last heard</th></tr></thead><tbody></tbody></table></section>
<section><h2>Keys <span id="more"></span></h2><table id="keys"><thead><tr><th>key</th><th>value</th>
<th>writer</th><th>written</th></tr></thead><tbody></tbody></table></section>
<section><h2>Anti-entropy</h2><table id="peers"><thead><tr><th>peer</th><th>last in sync</th>
<th>last repair</th><th>entries in / out</th></tr></thead><tbody></tbody></table></section>
<section><h2>Live changes</h2><ul id="stream"></ul></section>
</main><script nonce="${nonce}">${SCRIPT}</script></body></html>`;
}

/** The Content-Security-Policy of the dashboard: nothing but this origin and its nonce. */
export function dashboardCsp(nonce: string): string {
  return `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; ` +
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; " +
    "frame-ancestors 'none'";
}
