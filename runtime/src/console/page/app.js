// The pairos console: the state arrives by server-sent events (/api/v1/events); actions are
// POSTs with the session's CSRF token. Text from the pair is only ever set as textContent.
"use strict";

let csrf = null;
let stream = null;
let pending = null;
// What had the focus when a confirmation opened: it gets the focus back when it closes.
let opener = null;
// When the event stream last said anything: it ticks every 2 s, so a longer silence means the
// node that served it is gone, and the page connects again (to whichever node holds the address).
let heard = 0;
const SILENCE_MS = 6000;

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

async function api(method, path, body) {
  const headers = { "content-type": "application/json" };
  if (csrf) headers["x-pairos-csrf"] = csrf;
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}

function show(which) {
  for (const id of ["login", "setup", "dashboard"]) $(id).hidden = id !== which;
  $("logout").hidden = which !== "dashboard";
}

async function start() {
  const s = await api("GET", "/api/v1/session");
  $("fingerprint").textContent = s.fingerprint;
  if (s.logged_in) {
    csrf = s.csrf;
    show("dashboard");
    listen();
    loadDestinations().catch(() => {});
  } else {
    show(s.password_set ? "login" : "setup");
    $("summary").textContent = "not logged in";
  }
}

function listen() {
  if (stream) stream.close();
  stream = new EventSource("/api/v1/events");
  heard = Date.now();
  stream.addEventListener("state", (e) => { heard = Date.now(); render(JSON.parse(e.data)); });
  stream.addEventListener("tick", () => { heard = Date.now(); });
  stream.onerror = () => {
    $("summary").textContent = "reconnecting…";
    document.body.dataset.connected = "false";
  };
  stream.onopen = () => { document.body.dataset.connected = "true"; };
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function part(name, ok, text) {
  return el("li", { class: ok ? "part ok" : "part bad", "data-part": name, "data-ok": String(ok) }, `${name}: ${text}`);
}

// One node's parts as a list: its links, the pair's address, health, BMC sensors, volumes.
function parts(p, sensors, volumes) {
  const list = el("ul", { class: "parts" });
  list.append(part("private link", p.links.private.carrier && p.links.private.peer_heard,
    `${p.links.private.interface} ${p.links.private.carrier ? "carrier" : "NO CARRIER"}, peer ${p.links.private.peer_heard ? "heard" : "not heard"}`));
  list.append(part("public link", p.links.public.carrier,
    `${p.links.public.interface} ${p.links.public.carrier ? "carrier" : "NO CARRIER"}, peer ${p.links.public.peer_heard ? "heard" : "not heard"}`));
  if (p.address) list.append(part("pair address", p.role !== "primary" || p.address.held, `${p.address.address} ${p.address.held ? "held here" : "not held here"}`));
  list.append(part("health", p.health >= 900, `score ${p.health}`));
  if (p.fence) list.append(part("fence", true, p.fence));
  for (const r of sensors || []) list.append(part(r.name, r.state === "ok" || r.state === "nc" || r.state === "ns", `${r.reading} (${r.state})`));
  for (const v of (volumes ? volumes.volumes : [])) list.append(part(`volume ${v.name}`, v.disk === "UpToDate", `${v.disk}, ${v.role}`));
  return list;
}

function nodeCard(s) {
  const p = s.pair;
  const me = el("article", { class: `node ${p.role}`, "data-node": p.node, "data-role": p.role, "data-live": "true" },
    el("h3", {}, `${p.node} — ${p.role}${p.epoch != null ? ` (epoch ${p.epoch})` : ""}`), parts(p, s.sensors, s.volumes));
  const peer = p.peer || { live: false };
  const role = peer.live ? peer.role : "silent";
  const them = el("article", { class: `node ${role}`, "data-node": p.peer_name, "data-role": role, "data-live": String(!!peer.live) },
    el("h3", {}, `${p.peer_name} — ${role}`));
  const theirs = s.peer.reachable && s.peer.parts && s.peer.parts.pair;
  if (peer.live && theirs) {
    // The peer's volumes as this node's DRBD sees them now (the peer's own report is up to a
    // few seconds old), with the role the peer reported.
    const theirVolumes = (s.peer.parts.volumes ? s.peer.parts.volumes.volumes : []);
    const volumes = s.volumes ? { volumes: s.volumes.volumes.map((v) => ({
      name: v.name,
      disk: v.peer_disk,
      role: (theirVolumes.find((t) => t.name === v.name) || { role: "?" }).role,
    })) } : s.peer.parts.volumes;
    them.append(parts(s.peer.parts.pair, s.peer.parts.sensors, volumes));
  } else {
    const list = el("ul", { class: "parts" });
    list.append(part("heartbeats", !!peer.live, peer.live ? "arriving" : "none: the node is off, cut off or failed"));
    if (peer.live) {
      list.append(part("health", peer.health >= 900, `score ${peer.health}`));
      list.append(part("ready to take over", peer.ready, peer.ready ? "yes" : "no"));
    }
    list.append(part("console", !!s.peer.reachable, s.peer.reachable ? "reachable" : (s.peer.error || "not configured")));
    them.append(list);
  }
  return [me, them].sort((a, b) => a.dataset.node.localeCompare(b.dataset.node));
}

// A peer being healed: network boot, imaging, enrolment, then the volumes' sync.
function healing(s) {
  const n = s.node || {};
  const r = n.peer_recovery;
  const boots = n.network_boot || [];
  const syncing = (s.volumes ? s.volumes.volumes : []).filter((v) => v.peer_disk !== "UpToDate");
  if (!r && !n.enrolment && !syncing.length) return [];
  const steps = [];
  steps.push(["network boot", boots.length ? boots[boots.length - 1] : "—", boots.length > 0]);
  steps.push(["imaging", r ? `${r.step}: ${r.percent}% (${Math.round(r.written_bytes / 1048576)} of ${Math.round(r.total_bytes / 1048576)} MiB) ${r.message}` : "—", !!r && String(r.step).toLowerCase() === "finished", r ? r.percent : null]);
  steps.push(["enrolment", n.enrolment || (s.pair && s.pair.peer && s.pair.peer.live ? "the peer is back in the pair" : "—"), !!(s.pair && s.pair.peer && s.pair.peer.live)]);
  const pct = syncing.length ? Math.min(...syncing.map((v) => v.done_percent || 0)) : 100;
  steps.push(["sync", syncing.length ? syncing.map((v) => `${v.name} ${v.peer_disk} ${v.done_percent != null ? v.done_percent.toFixed(1) + "%" : ""}`).join(", ") : "every volume in sync", !syncing.length, pct]);
  return steps.map(([name, text, done, percent]) => el("li", { "data-step": name, "data-done": String(done), class: done ? "part ok" : "part" },
    `${name}: ${text} `, ...(percent != null ? [el("progress", { max: "100", value: String(percent) })] : [])));
}

function render(s) {
  document.body.dataset.connected = "true";
  const p = s.pair;
  const primary = !p ? null : p.role === "primary" ? p.node : (p.peer && p.peer.live && p.peer.role === "primary") ? p.peer_name : null;
  const bad = s.alarms.filter((a) => !a.acknowledged).length;
  $("summary").textContent = `${primary ? `primary: ${primary}` : "no primary"} · served by ${s.served_by || "?"} · ${s.alarms.length} alarm(s), ${bad} unacknowledged`;
  document.body.dataset.primary = primary || "";
  document.body.dataset.alarms = String(s.alarms.length);
  $("nodes").replaceChildren(...(p ? nodeCard(s) : [el("p", { class: "error" }, "the pair daemon is not running on this node")]));
  const heal = healing(s);
  $("healing-section").hidden = heal.length === 0;
  $("healing").replaceChildren(...heal);
  const why = p && p.events.filter((e) => e.what === "primary").pop();
  $("why").textContent = why ? `${why.node} became primary in epoch ${why.epoch}: ${why.why}` : "";

  $("alarms").replaceChildren(...(s.alarms.length ? s.alarms.map((a) => {
    const li = el("li", { class: `alarm ${a.severity}${a.acknowledged ? " acknowledged" : ""}`, "data-alarm": a.id, "data-severity": a.severity, "data-acknowledged": String(a.acknowledged) },
      el("strong", {}, a.severity), ` ${a.node}: ${a.text} `);
    if (!a.acknowledged) {
      const b = el("button", { type: "button", "data-ack": a.id }, "Acknowledge");
      b.addEventListener("click", () => api("POST", `/api/v1/alarms/${a.id}/acknowledge`).catch((e) => { $("action-result").textContent = e.message; }));
      li.append(b);
    } else li.append(el("span", { class: "note" }, "acknowledged"));
    return li;
  }) : [el("li", { class: "none" }, "none")]));

  const vbody = $("volumes").tBodies[0];
  vbody.replaceChildren(...(s.volumes ? s.volumes.volumes : []).map((v) => {
    const sync = v.done_percent != null
      ? `${v.done_percent.toFixed(1)}%${v.rate ? `, ${bytes(v.rate)}/s` : ""}${v.seconds_left != null ? `, ${v.seconds_left} s left` : ""}`
      : v.out_of_sync ? `${bytes(v.out_of_sync)} out of sync` : "in sync";
    const bar = el("progress", { max: "100", value: String(v.done_percent != null ? v.done_percent : (v.out_of_sync ? 0 : 100)) });
    return el("tr", { "data-volume": v.name }, el("td", {}, v.name), el("td", {}, bytes(v.size)), el("td", {}, `${v.role} ${v.disk}`),
      el("td", {}, v.peer_disk), el("td", {}, `${v.connection} ${v.replication}`), el("td", {}, bar, " ", sync));
  }));
  const wbody = $("workloads").tBodies[0];
  wbody.replaceChildren(...(s.workloads ? s.workloads.workloads : []).map((w) =>
    el("tr", { "data-workload": w.name, "data-state": w.state }, el("td", {}, w.name, " ", logButton(w.name)), el("td", { class: w.state }, w.state),
      el("td", {}, w.restarts_left), el("td", {}, w.last_failure || ""))));
  $("events").replaceChildren(...s.events.slice().reverse().slice(0, 30).map((e) =>
    el("li", { "data-what": e.what }, `${new Date(e.time * 1000).toISOString().replace("T", " ").slice(0, 19)} ${e.node} ${e.what} (epoch ${e.epoch}): ${e.why}`)));
  $("current-fingerprint").textContent = s.fingerprint;
  $("maintenance").dataset.on = String(!!(p && p.maintenance));
  $("maintenance").textContent = p && p.maintenance ? "End maintenance…" : "Maintenance…";
}

async function loadDestinations() {
  const d = await api("GET", "/api/v1/alarm-destinations");
  const m = d.mail || {};
  $("mail-server").value = m.server || "";
  $("mail-port").value = m.port || 587;
  $("mail-starttls").checked = m.starttls !== false;
  $("mail-user").value = m.user || "";
  $("mail-password").value = "";
  $("mail-from").value = m.from || "";
  $("mail-to").value = (m.to || []).join(", ");
  const t = (d.snmp || [])[0] || {};
  $("snmp-target").value = t.target || "";
  $("snmp-community").value = t.community || "public";
  $("webhook-url").value = ((d.webhooks || [])[0] || {}).url || "";
}

function destinationsFromForm() {
  const d = { snmp: [], webhooks: [] };
  if ($("mail-server").value.trim()) {
    d.mail = {
      server: $("mail-server").value.trim(), port: Number($("mail-port").value), starttls: $("mail-starttls").checked,
      from: $("mail-from").value.trim(), to: $("mail-to").value.split(",").map((x) => x.trim()).filter(Boolean),
      user: $("mail-user").value.trim() || null, password: $("mail-password").value || ($("mail-user").value.trim() ? "(set)" : null),
    };
  }
  if ($("snmp-target").value.trim()) d.snmp.push({ target: $("snmp-target").value.trim(), community: $("snmp-community").value });
  if ($("webhook-url").value.trim()) d.webhooks.push({ url: $("webhook-url").value.trim() });
  return d;
}

function results(lines) {
  $("destinations-result").replaceChildren(...lines.map((l) => el("li", { class: l.ok ? "part ok" : "part bad" }, l.text)));
}

function logButton(name) {
  const b = el("button", { type: "button", "data-log": name }, "log");
  b.addEventListener("click", async () => {
    try {
      const r = await api("GET", `/api/v1/workloads/${encodeURIComponent(name)}/log?lines=200`);
      $("log-title").textContent = `Log of ${name} (last ${r.lines.length} lines)`;
      $("log").textContent = r.lines.join("\n");
      $("log-section").hidden = false;
    } catch (err) { $("action-result").textContent = err.message; }
  });
  return b;
}

function ask(text, action) {
  pending = action;
  opener = document.activeElement;
  $("confirm-text").textContent = text;
  $("confirm").hidden = false;
  $("confirm-yes").focus();
}

function closeConfirm() {
  if ($("confirm").hidden) return;
  $("confirm").hidden = true;
  if (opener && opener.focus) opener.focus();
  opener = null;
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const r = await api("POST", "/api/v1/session", { password: $("password").value });
      csrf = r.csrf;
      $("password").value = "";
      $("login-error").textContent = "";
      show("dashboard");
      listen();
      loadDestinations().catch(() => {});
    } catch (err) { $("login-error").textContent = err.message; }
  });
  $("setup-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const r = await api("POST", "/api/v1/password", { password: $("new-password").value });
      csrf = r.csrf;
      show("dashboard");
      listen();
      loadDestinations().catch(() => {});
    } catch (err) { $("setup-error").textContent = err.message; }
  });
  $("logout").addEventListener("click", async () => {
    await api("DELETE", "/api/v1/session").catch(() => {});
    if (stream) stream.close();
    stream = null;
    csrf = null;
    show("login");
  });
  $("switchover").addEventListener("click", () => ask(
    "Switch over: the primary stops its workloads, gives up the pair's address and hands the role to its peer, which takes them over. Clients wait a few seconds.",
    () => api("POST", "/api/v1/switchover")));
  $("maintenance").addEventListener("click", () => {
    const on = $("maintenance").dataset.on !== "true";
    ask(on ? "Maintenance mode: the pair keeps its primary where it is and does not fail over until maintenance ends."
           : "End maintenance: the pair fails over again when the primary fails.",
      () => api("POST", "/api/v1/maintenance", { on }));
  });
  $("volume-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("volume-name").value.trim(), size = $("volume-size").value.trim();
    ask(`Add volume ${name} of ${size}: it is made on both nodes and mirrored; the new node's side syncs in full.`,
      async () => { const r = await api("POST", "/api/v1/volumes", { name, size }); return { done: `volume ${r.name} is ${r.device}` }; });
  });
  $("workload-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const definition = $("workload-definition").value;
    ask("Add this workload: it is checked whole; if anything is wrong nothing changes, otherwise the primary starts it and the peer learns it.",
      async () => { const r = await api("POST", "/api/v1/workloads", { definition }); return { done: `workload ${r.name} added` }; });
  });
  $("approve-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const mac = $("approve-mac").value.trim();
    ask(`Approve ${mac}: the next time it asks, it is given the pair's key and images itself from this node.`,
      async () => { const r = await api("POST", "/api/v1/enrolment/approve", { mac }); return { done: `approved ${r.approved}` }; });
  });
  $("certificate-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const body = { cert_pem: $("cert-pem").value, key_pem: $("key-pem").value };
    ask("Upload this certificate: both nodes present it within seconds; browsers that trusted the pair's own certificate will ask again.",
      async () => { await api("PUT", "/api/v1/certificate/uploaded", body); $("key-pem").value = ""; return { done: "uploaded" }; });
  });
  $("certificate-own").addEventListener("click", () => ask("Go back to the pair's own certificate (derived from the pair key).",
    async () => { await api("DELETE", "/api/v1/certificate/uploaded"); return { done: "the pair's own certificate again" }; }));
  $("confirm-yes").addEventListener("click", async () => {
    closeConfirm();
    try { $("action-result").textContent = (await pending()).done; } catch (err) { $("action-result").textContent = err.message; }
  });
  $("destinations-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("PUT", "/api/v1/alarm-destinations", destinationsFromForm());
      results([{ ok: true, text: "saved; the peer follows within seconds" }]);
      await loadDestinations();
    } catch (err) { results([{ ok: false, text: err.message }]); }
  });
  $("destinations-test").addEventListener("click", async () => {
    try {
      const r = await api("POST", "/api/v1/alarm-destinations/test");
      results(r.results.map((x) => ({ ok: x.sent, text: `${x.destination}: ${x.sent ? "sent" : x.error}` })));
    } catch (err) { results([{ ok: false, text: err.message }]); }
  });
  $("confirm-no").addEventListener("click", closeConfirm);
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") closeConfirm(); });
  setInterval(() => {
    if (stream && Date.now() - heard > SILENCE_MS) {
      $("summary").textContent = "the console's node went silent: reconnecting…";
      document.body.dataset.connected = "false";
      listen();
    }
  }, 1000);
  start().catch((err) => { $("summary").textContent = err.message; });
});
