// The stepraft-sim timeline: builds an SVG view of the embedded trace and redraws the visible
// window on zoom and pan. No dependencies; everything it needs is in this page.
(function () {
  "use strict";

  const DATA = JSON.parse(document.getElementById("trace-data").textContent);
  const records = DATA.records;
  const outcome = DATA.outcome;

  // Geometry, in CSS pixels.
  const LABEL_W = 62;
  const RIGHT_PAD = 14;
  const AXIS_H = 30;
  const LANE_H = 34;
  const LANE_GAP = 12;
  const CHART_GAP = 34;
  const CHART_H = 150;
  const OVERVIEW_LANE_H = 6;
  // Above this many messages in the window, arrows are not drawn (a note says so).
  const ARROWS_MAX = 1200;
  const DOTS_MAX = 3000;

  const ROLE_COLORS = {
    follower: "#dde5ee",
    "pre-candidate": "#fbe7a8",
    candidate: "#f3a35c",
    leader: "#2f9e5f",
    other: "#c9c9c9",
  };
  const ROLE_NAMES = ["follower", "pre-candidate", "candidate", "leader"];
  const NODE_COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1",
    "#76b7b2", "#edc948", "#9c755f", "#ff9da7", "#6b6ecf"];
  const KIND_COLORS = {
    AppendEntries: "#2f6fd0",
    AppendEntriesResponse: "#7aa3e6",
    Heartbeat: "#8a9bb0",
    HeartbeatResponse: "#b3bfcc",
    PreVote: "#d9a400",
    PreVoteResponse: "#e9c95a",
    RequestVote: "#e0701b",
    RequestVoteResponse: "#f0a868",
    TimeoutNow: "#c2185b",
    InstallSnapshot: "#7b4fc4",
    InstallSnapshotResponse: "#a88bd9",
    ReadIndexRequest: "#16907f",
    ReadIndexResponse: "#66bfb2",
  };
  const DROP_COLOR = "#d32f2f";

  function esc(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({
      "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
    })[c]);
  }
  function ms(us) {
    return (us / 1000).toFixed(3) + " ms";
  }
  function group(n) {
    return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }
  function sentAt(record) {
    return typeof record.sent_us === "number" ? record.sent_us : record.time_us;
  }
  function isMessage(record) {
    return record.event === "deliver" || record.event === "drop" || record.event === "duplicate";
  }

  // ---- The model: lanes, role segments, pauses, partitions, commit series. ----

  function buildModel() {
    const nodeSet = new Set();
    for (const r of records) {
      for (const key of ["from", "to", "node"]) {
        if (typeof r[key] === "number") nodeSet.add(r[key]);
      }
      if (r.event === "partition") r.cuts.forEach(([a, b]) => { nodeSet.add(a); nodeSet.add(b); });
    }
    const nodes = Array.from(nodeSet).sort((a, b) => a - b);
    const lastTime = records.length ? records[records.length - 1].time_us : 0;
    const end = Math.max(lastTime, outcome.time_us, 1);
    const model = {
      nodes, end, laneOf: new Map(nodes.map((n, k) => [n, k])),
      segments: [], pauses: [], markers: [], bands: [], phases: [], messages: [], acks: [],
      commit: new Map(nodes.map((n) => [n, []])),
      applied: new Map(nodes.map((n) => [n, []])),
      kinds: new Set(), indexMax: 0, violation: null,
    };
    const state = new Map(nodes.map((n) => [n, {
      role: "follower", term: 0, leader: null, start: 0, index: -1, pauseStart: null, pauseIndex: -1,
    }]));
    const close = (node, st, t) => {
      if (t > st.start || st.role === "down") {
        model.segments.push({ node, start: st.start, end: t, role: st.role, term: st.term,
          leader: st.leader, i: st.index });
      }
    };
    const closePause = (node, st, t) => {
      if (st.pauseStart !== null) {
        model.pauses.push({ node, start: st.pauseStart, end: t, i: st.pauseIndex });
        st.pauseStart = null;
      }
    };
    let band = null;
    records.forEach((r, i) => {
      const t = r.time_us;
      const st = state.get(r.node);
      switch (r.event) {
        case "role":
          if (st.role !== r.role || st.term !== r.term) {
            close(r.node, st, t);
            Object.assign(st, { role: r.role, term: r.term, leader: r.leader, start: t, index: i });
          } else {
            st.leader = r.leader;
          }
          break;
        case "crash":
          close(r.node, st, t);
          closePause(r.node, st, t);
          Object.assign(st, { role: "down", leader: null, start: t, index: i });
          model.markers.push({ node: r.node, t, kind: "crash", i });
          model.commit.get(r.node).push([t, null]);
          model.applied.get(r.node).push([t, null]);
          break;
        case "restart":
          close(r.node, st, t);
          Object.assign(st, { role: "follower", leader: null, start: t, index: i });
          model.markers.push({ node: r.node, t, kind: "restart", i });
          break;
        case "pause":
          st.pauseStart = t;
          st.pauseIndex = i;
          model.markers.push({ node: r.node, t, kind: "pause", i });
          break;
        case "resume":
          closePause(r.node, st, t);
          model.markers.push({ node: r.node, t, kind: "resume", i });
          break;
        case "restore":
          model.markers.push({ node: r.node, t, kind: "restore", i });
          model.applied.get(r.node).push([t, r.index]);
          break;
        case "commit":
          model.commit.get(r.node).push([t, r.index]);
          model.indexMax = Math.max(model.indexMax, r.index);
          break;
        case "apply":
          model.applied.get(r.node).push([t, r.index]);
          model.indexMax = Math.max(model.indexMax, r.index);
          break;
        case "partition":
          band = { start: t, end: model.end, kind: r.kind, cuts: r.cuts, i };
          model.bands.push(band);
          break;
        case "heal":
          if (band) band.end = t;
          band = null;
          break;
        case "phase":
          model.phases.push({ t, phase: r.phase, i });
          break;
        case "violation":
          model.violation = { t, i };
          break;
        case "complete":
          if (r.outcome === "ok" && typeof r.index === "number") model.acks.push(i);
          break;
        default:
          if (isMessage(r)) {
            model.messages.push(i);
            model.kinds.add(r.message.kind);
          }
      }
    });
    for (const [node, st] of state) {
      close(node, st, end);
      closePause(node, st, end);
    }
    for (const b of model.bands) b.groups = partitionGroups(nodes, b.cuts);
    model.suspects = new Set();
    const detail = outcome.detail || "";
    // A safety detail names the nodes involved; a liveness detail lists every node.
    if (outcome.safety) {
      for (const match of detail.matchAll(/\bn(\d+)\b/g)) model.suspects.add(Number(match[1]));
    }
    return model;
  }

  // The sides of a partition: nodes that can still talk both ways, as connected components.
  function partitionGroups(nodes, cuts) {
    const cut = new Set(cuts.map(([a, b]) => a + ">" + b));
    const seen = new Set();
    const groups = [];
    for (const start of nodes) {
      if (seen.has(start)) continue;
      const component = [];
      const stack = [start];
      seen.add(start);
      while (stack.length) {
        const n = stack.pop();
        component.push(n);
        for (const m of nodes) {
          if (!seen.has(m) && !cut.has(n + ">" + m) && !cut.has(m + ">" + n)) {
            seen.add(m);
            stack.push(m);
          }
        }
      }
      groups.push(component.sort((a, b) => a - b));
    }
    return groups;
  }

  const model = buildModel();

  // ---- Page skeleton. ----

  const app = document.getElementById("app");
  app.innerHTML = `
    <header><h1 id="title"></h1><span id="badge" class="badge"></span><span class="facts" id="facts"></span></header>
    <div id="violation" hidden><b id="violation-property"></b><span id="violation-time"></span>
      <span class="detail" id="violation-detail"></span><button id="goto-violation">zoom to it</button></div>
    <div class="toolbar">
      <div class="group"><label for="kind">messages</label><select id="kind"></select>
        <label for="node">node</label><select id="node"></select></div>
      <div class="group"><label><input type="checkbox" id="show-delivered" checked> delivered</label>
        <label><input type="checkbox" id="show-dropped" checked> dropped</label>
        <label><input type="checkbox" id="show-duplicated" checked> duplicated</label></div>
      <div class="group"><button id="zoom-in" title="zoom in (+)">+</button>
        <button id="zoom-out" title="zoom out (-)">−</button>
        <button id="zoom-fit" title="whole run (0)">whole run</button></div>
      <span id="window-readout"></span><span id="note"></span>
    </div>
    <main><div id="charts"><svg id="overview"></svg><svg id="view"></svg></div>
      <aside><h2>Details</h2><div id="details"><span class="hint">Click a role segment, marker,
        message arrow or the index chart to see what happened.</span></div>
        <div class="legend" id="legend"></div></aside></main>
    <footer>Drag to pan, scroll to zoom, click the overview to jump. Arrows run from send to
      delivery; a red × is a lost message. Generated by stepraft-sim.</footer>`;

  document.getElementById("title").textContent = DATA.title;
  const badge = document.getElementById("badge");
  badge.textContent = outcome.status;
  badge.classList.add(outcome.status);
  document.getElementById("facts").textContent =
    `${model.nodes.length} nodes · ${(model.end / 1e6).toFixed(2)} s simulated · ` +
    `${group(records.length)} events · ${group(model.messages.length)} messages`;
  if (outcome.status !== "passed") {
    document.getElementById("violation").hidden = false;
    document.getElementById("violation-property").textContent =
      "⚠ " + outcome.property + (outcome.safety ? " (safety)" : "");
    document.getElementById("violation-time").textContent = "at " + ms(outcome.time_us);
    document.getElementById("violation-detail").textContent = outcome.detail || "";
  }

  const kindSelect = document.getElementById("kind");
  const kindOptions = [["all", "all kinds"], ["none", "none"]]
    .concat(Array.from(model.kinds).sort().map((k) => [k, k]));
  kindSelect.innerHTML = kindOptions.map(([v, l]) => `<option value="${esc(v)}">${esc(l)}</option>`).join("");
  const nodeSelect = document.getElementById("node");
  nodeSelect.innerHTML = `<option value="all">all</option>` +
    model.nodes.map((n) => `<option value="${n}">n${n}</option>`).join("");

  const legend = document.getElementById("legend");
  legend.innerHTML = `<div class="heading">roles and faults</div>` + ROLE_NAMES.map((r) =>
    `<div><span class="swatch" style="background:${ROLE_COLORS[r]}"></span>${r}</div>`).join("") +
    `<div><span class="swatch" style="background:repeating-linear-gradient(45deg,#888 0 2px,#eee 2px 5px)"></span>down (crashed)</div>` +
    `<div><span class="swatch" style="background:repeating-linear-gradient(90deg,#7e57c2 0 2px,transparent 2px 6px)"></span>paused</div>` +
    `<div><span class="swatch" style="background:rgba(255,167,38,0.18);border-color:#f0a030"></span>partition</div>` +
    `<div><span class="swatch" style="background:${DROP_COLOR}"></span>violation / lost message</div>` +
    `<div class="heading">messages, from send to delivery</div>` +
    Array.from(model.kinds).sort().map((k) =>
      `<div><span class="swatch line" style="background:${kindColor(k)}"></span>${esc(k)}</div>`).join("") +
    `<div class="heading">index chart: commit (solid), applied (dashed), acknowledged writes (dots)</div>` +
    model.nodes.map((n) =>
      `<div><span class="swatch" style="background:${nodeColor(n)}"></span>n${n}</div>`).join("");

  function nodeColor(n) {
    return NODE_COLORS[model.laneOf.get(n) % NODE_COLORS.length];
  }
  function kindColor(kind) {
    return KIND_COLORS[kind] || "#555";
  }

  // ---- View state. ----

  const view = { t0: 0, t1: model.end, selected: null };
  const filters = { kind: "all", node: "all", delivered: true, dropped: true, duplicated: true };
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.has("t0") && hash.has("t1")) {
    setWindow(Number(hash.get("t0")) * 1000, Number(hash.get("t1")) * 1000);
  }

  function setWindow(t0, t1) {
    const span = Math.max(Math.min(t1 - t0, model.end), 50);
    t0 = Math.min(Math.max(t0, 0), model.end - span);
    view.t0 = Math.max(t0, 0);
    view.t1 = view.t0 + span;
  }
  function zoom(factor, around) {
    const at = around === undefined ? (view.t0 + view.t1) / 2 : around;
    setWindow(at - (at - view.t0) * factor, at + (view.t1 - at) * factor);
    draw();
  }

  const overview = document.getElementById("overview");
  const svg = document.getElementById("view");
  const charts = document.getElementById("charts");

  function plotWidth() {
    return Math.max(charts.clientWidth - LABEL_W - RIGHT_PAD, 100);
  }
  function x(t) {
    return LABEL_W + (t - view.t0) / (view.t1 - view.t0) * plotWidth();
  }
  function timeAt(px) {
    return view.t0 + (px - LABEL_W) / plotWidth() * (view.t1 - view.t0);
  }
  function laneTop(node) {
    return AXIS_H + model.laneOf.get(node) * (LANE_H + LANE_GAP);
  }
  function laneMid(node) {
    return laneTop(node) + LANE_H / 2;
  }
  const lanesBottom = AXIS_H + model.nodes.length * (LANE_H + LANE_GAP) - LANE_GAP;
  const chartTop = lanesBottom + CHART_GAP;
  const viewHeight = chartTop + CHART_H + 22;

  function niceStep(span, count) {
    const raw = span / count;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (raw <= m * power) return m * power;
    return 10 * power;
  }
  function tickLabel(t, step) {
    if (step >= 1e6) return (t / 1e6).toFixed(0) + " s";
    if (step >= 1e5) return (t / 1e6).toFixed(1) + " s";
    const decimals = step >= 1000 ? 0 : step >= 100 ? 1 : step >= 10 ? 2 : 3;
    return (t / 1000).toFixed(decimals) + " ms";
  }

  // ---- Drawing the main view. ----

  function visibleMessages() {
    const shown = [];
    for (const i of model.messages) {
      const r = records[i];
      if (r.time_us < view.t0 || sentAt(r) > view.t1) continue;
      if (filters.kind === "none") continue;
      if (filters.kind !== "all" && r.message.kind !== filters.kind) continue;
      if (filters.node !== "all" && r.from !== Number(filters.node) && r.to !== Number(filters.node)) continue;
      if (r.event === "deliver" && !filters.delivered) continue;
      if (r.event === "drop" && !filters.dropped) continue;
      if (r.event === "duplicate" && !filters.duplicated) continue;
      shown.push(i);
    }
    return shown;
  }

  function drawAxis(out, width) {
    const step = niceStep(view.t1 - view.t0, Math.max(Math.floor(plotWidth() / 110), 2));
    out.push(`<g class="axis">`);
    for (let t = Math.ceil(view.t0 / step) * step; t <= view.t1; t += step) {
      const px = x(t).toFixed(1);
      const anchor = +px > LABEL_W + plotWidth() - 30 ? "end" : "middle";
      out.push(`<line x1="${px}" x2="${px}" y1="${AXIS_H - 6}" y2="${chartTop + CHART_H}" stroke="#eef1f5"/>`,
        `<text x="${px}" y="${AXIS_H - 10}" text-anchor="${anchor}">${tickLabel(t, step)}</text>`);
    }
    out.push(`<line x1="${LABEL_W}" x2="${width - RIGHT_PAD}" y1="${AXIS_H - 6}" y2="${AXIS_H - 6}" stroke="#c3cad3"/></g>`);
  }

  function drawBands(out) {
    for (const b of model.bands) {
      if (b.end < view.t0 || b.start > view.t1) continue;
      const x1 = Math.max(x(b.start), LABEL_W - 2);
      const x2 = Math.min(x(b.end), LABEL_W + plotWidth() + 2);
      const sides = b.groups.map((g) => "{" + g.map((n) => "n" + n).join(",") + "}").join(" | ");
      out.push(`<g class="event band" data-i="${b.i}"><rect x="${x1}" y="${AXIS_H - 4}" width="${Math.max(x2 - x1, 1)}" ` +
        `height="${lanesBottom - AXIS_H + 8}" fill="rgba(255,167,38,0.13)" stroke="#f0a030" stroke-dasharray="4 3"/>`);
      if (x2 - x1 > 120) {
        out.push(`<text class="band-label" x="${x1 + 4}" y="${lanesBottom + 14}">partition ${esc(b.kind)}: ${esc(sides)}</text>`);
      }
      // A thin bar under each lane, coloured by the side the node is on.
      b.groups.forEach((g, k) => {
        for (const n of g) {
          out.push(`<rect x="${x1}" y="${laneTop(n) + LANE_H + 1}" width="${Math.max(x2 - x1, 1)}" height="2.5" opacity="0.8" ` +
            `fill="${["#f0a030", "#8d6e63", "#26a69a", "#5c6bc0"][k % 4]}"/>`);
        }
      });
      out.push(`</g>`);
    }
  }

  function drawLane(out, node) {
    const top = laneTop(node);
    const labels = [];
    out.push(`<g class="lane" data-node="${node}">`,
      `<rect x="${LABEL_W}" y="${top}" width="${plotWidth()}" height="${LANE_H}" fill="#f7f9fb"/>`);
    model.segments.forEach((s, k) => {
      if (s.node !== node || s.end < view.t0 || s.start > view.t1) return;
      const x1 = Math.max(x(s.start), LABEL_W - 1);
      const x2 = Math.min(x(s.end), LABEL_W + plotWidth() + 1);
      const width = Math.max(x2 - x1, 0.8);
      const fill = s.role === "down" ? "url(#hatch)" : (ROLE_COLORS[s.role] || ROLE_COLORS.other);
      const selected = view.selected === "s" + k ? " selected" : "";
      out.push(`<rect class="segment${selected}" data-seg="${k}" x="${x1}" y="${top}" width="${width}" height="${LANE_H}" ` +
        `fill="${fill}" stroke="rgba(0,0,0,0.08)"/>`);
      if (s.role !== "down" && width > 24) {
        const label = width > 110 ? `${s.role} · term ${s.term}` : `t${s.term}`;
        const light = s.role === "leader" ? " light" : "";
        labels.push(`<text class="term${light}" x="${x1 + 4}" y="${top + LANE_H / 2 + 4}">${label}</text>`);
      } else if (s.role === "down" && width > 48) {
        labels.push(`<text class="term" x="${x1 + 12}" y="${top + LANE_H / 2 + 4}">down</text>`);
      }
    });
    for (const p of model.pauses) {
      if (p.node !== node || p.end < view.t0 || p.start > view.t1) continue;
      const x1 = Math.max(x(p.start), LABEL_W);
      const x2 = Math.min(x(p.end), LABEL_W + plotWidth());
      const selected = view.selected === "i" + p.i ? " selected" : "";
      out.push(`<rect class="event${selected}" data-i="${p.i}" x="${x1}" y="${top + 3}" width="${Math.max(x2 - x1, 1)}" ` +
        `height="${LANE_H - 6}" fill="url(#stripes)" stroke="#7e57c2" stroke-width="0.8"/>`);
      if (x2 - x1 > 260) {
        labels.push(`<text class="term" x="${(x1 + x2) / 2}" y="${top + LANE_H / 2 + 4}" text-anchor="middle">paused</text>`);
      }
    }
    const suspect = model.suspects.has(node) ? " suspect" : "";
    out.push(...labels, `<text class="lane-label${suspect}" x="10" y="${top + LANE_H / 2 + 4}">n${node}</text></g>`);
  }

  function drawMarker(out, m) {
    const cx = x(m.t).toFixed(1);
    const cy = laneMid(m.node);
    const selected = view.selected === "i" + m.i ? " selected" : "";
    out.push(`<g class="event marker ${m.kind}${selected}" data-i="${m.i}">`);
    switch (m.kind) {
      case "crash":
        out.push(`<circle cx="${cx}" cy="${cy}" r="7" fill="#fff" stroke="${DROP_COLOR}" stroke-width="2"/>`,
          `<path d="M${cx - 3.5},${cy - 3.5}l7,7m0,-7l-7,7" stroke="${DROP_COLOR}" stroke-width="2"/>`);
        break;
      case "restart":
        out.push(`<path d="M${cx},${cy - 7}l7,7l-7,7z" fill="#2e7d32" stroke="#fff"/>`);
        break;
      case "pause":
        out.push(`<rect x="${cx - 5}" y="${cy - 6}" width="4" height="12" fill="#7e57c2"/>`,
          `<rect x="${+cx + 1}" y="${cy - 6}" width="4" height="12" fill="#7e57c2"/>`);
        break;
      case "resume":
        out.push(`<path d="M${cx - 3},${cy - 6}l8,6l-8,6z" fill="#7e57c2"/>`);
        break;
      default:
        out.push(`<rect x="${cx - 4}" y="${cy - 4}" width="8" height="8" fill="#1565c0" transform="rotate(45 ${cx} ${cy})"/>`);
    }
    out.push(`<circle cx="${cx}" cy="${cy}" r="9" fill="transparent"/></g>`);
  }

  function drawArrow(out, i) {
    const r = records[i];
    const selected = view.selected === "i" + i ? " selected" : "";
    const x1 = x(sentAt(r));
    const y1 = laneMid(r.from);
    const y2full = laneMid(r.to);
    if (r.event === "duplicate") {
      out.push(`<rect class="event${selected}" data-i="${i}" x="${x1 - 3}" y="${y1 - 13}" width="6" height="6" ` +
        `fill="#ff8f00" transform="rotate(45 ${x1} ${y1 - 10})"/>`);
      return;
    }
    const lostOnSend = r.event === "drop" && sentAt(r) === r.time_us;
    const x2 = lostOnSend ? x1 + 8 : x(r.time_us);
    const y2 = lostOnSend ? y1 + (y2full - y1) * 0.45 : y2full;
    const color = r.event === "drop" ? DROP_COLOR : kindColor(r.message.kind);
    const dash = r.event === "drop" ? ` stroke-dasharray="3 2"` : "";
    out.push(`<g class="event${selected}" data-i="${i}"><path class="arrow" d="M${x1.toFixed(1)},${y1}L${x2.toFixed(1)},${y2.toFixed(1)}" ` +
      `stroke="${color}"${dash}/>`);
    if (r.event === "drop") {
      out.push(`<path d="M${x2 - 3},${y2 - 3}l6,6m0,-6l-6,6" stroke="${DROP_COLOR}" stroke-width="1.8"/>`);
    } else {
      const angle = Math.atan2(y2 - y1, x2 - x1);
      const a1 = angle + 2.7;
      const a2 = angle - 2.7;
      out.push(`<path d="M${x2.toFixed(1)},${y2.toFixed(1)}L${(x2 + 7 * Math.cos(a1)).toFixed(1)},${(y2 + 7 * Math.sin(a1)).toFixed(1)}` +
        `L${(x2 + 7 * Math.cos(a2)).toFixed(1)},${(y2 + 7 * Math.sin(a2)).toFixed(1)}z" fill="${color}"/>`);
    }
    out.push(`</g>`);
  }

  function stepPath(points) {
    // Points before the window matter (the value carried into it); points after it do not.
    let d = "";
    let previous = null;
    const yOf = chartY;
    for (const [t, v] of points) {
      if (t > view.t1) break;
      if (t < view.t0) { previous = v; continue; }
      if (previous === null && v === null) continue;
      if (previous !== null && d === "") d += `M${LABEL_W},${yOf(previous).toFixed(1)}`;
      if (v === null) {
        d += `H${x(t).toFixed(1)}`;
      } else if (previous === null) {
        d += `M${x(t).toFixed(1)},${yOf(v).toFixed(1)}`;
      } else {
        d += `H${x(t).toFixed(1)}V${yOf(v).toFixed(1)}`;
      }
      previous = v;
    }
    if (previous !== null) {
      if (d === "") d = `M${LABEL_W},${yOf(previous).toFixed(1)}`;
      d += `H${Math.min(x(model.end), LABEL_W + plotWidth()).toFixed(1)}`;
    }
    return d;
  }

  function chartY(v) {
    return chartTop + CHART_H - (v / Math.max(model.indexMax, 1)) * (CHART_H - 8);
  }

  function drawChartFrame(out) {
    out.push(`<g class="chart"><rect x="${LABEL_W}" y="${chartTop}" width="${plotWidth()}" height="${CHART_H}" fill="#fbfcfd" stroke="#e1e6ec"/>`,
      `<text x="8" y="${chartTop + 30}" style="font-weight:600;fill:#1d2733">index</text>`,
      `<line x1="8" x2="20" y1="${chartTop + 41}" y2="${chartTop + 41}" stroke="#66717f" stroke-width="1.7"/>`,
      `<text x="23" y="${chartTop + 44}" style="font-size:9.5px">commit</text>`,
      `<line x1="8" x2="20" y1="${chartTop + 53}" y2="${chartTop + 53}" stroke="#66717f" stroke-dasharray="4 3"/>`,
      `<text x="23" y="${chartTop + 56}" style="font-size:9.5px">applied</text>`);
    for (const v of new Set([0, Math.round(model.indexMax / 2), model.indexMax])) {
      out.push(`<text x="${LABEL_W - 6}" y="${chartY(v) + 4}" text-anchor="end">${v}</text>`,
        `<line x1="${LABEL_W}" x2="${LABEL_W + plotWidth()}" y1="${chartY(v)}" y2="${chartY(v)}" stroke="#e8ecf1"/>`);
    }
    out.push(`</g>`);
  }

  function drawChart(out) {
    const yOf = chartY;
    out.push(`<g class="chart" id="index-chart"><rect x="${LABEL_W}" y="${chartTop}" width="${plotWidth()}" height="${CHART_H}" fill="transparent"/>`);
    let dots = 0;
    for (const i of model.acks) {
      const r = records[i];
      if (r.time_us < view.t0 || r.time_us > view.t1) continue;
      if (++dots > DOTS_MAX) break;
      out.push(`<circle class="event" data-i="${i}" cx="${x(r.time_us).toFixed(1)}" cy="${yOf(r.index).toFixed(1)}" r="1.8" fill="#b6c2cc"/>`);
    }
    for (const node of model.nodes) {
      const color = nodeColor(node);
      out.push(`<path d="${stepPath(model.commit.get(node))}" fill="none" stroke="${color}" stroke-width="1.7"/>`,
        `<path d="${stepPath(model.applied.get(node))}" fill="none" stroke="${color}" stroke-width="1" stroke-dasharray="4 3" opacity="0.9"/>`);
    }
    out.push(`</g>`);
  }

  function drawViolation(out) {
    if (outcome.status === "passed") return;
    const t = model.violation ? model.violation.t : outcome.time_us;
    const i = model.violation ? model.violation.i : records.length - 1;
    const px = x(t).toFixed(1);
    out.push(`<g class="violation-marker event" data-i="${i}" data-time-us="${t}">`,
      `<line x1="${px}" x2="${px}" y1="${AXIS_H - 4}" y2="${chartTop + CHART_H}" stroke="${DROP_COLOR}" stroke-width="2.5"/>`,
      `<path d="M${px},${AXIS_H - 4}l-6,-9h12z" fill="${DROP_COLOR}"/>`,
      `<text class="violation-label" x="${+px - 8}" y="${AXIS_H - 16}" text-anchor="end">⚠ ${esc(outcome.property)}</text></g>`);
  }

  function drawPhases(out) {
    for (const p of model.phases) {
      if (p.t < view.t0 || p.t > view.t1 || p.t === 0) continue;
      const px = x(p.t).toFixed(1);
      // Near the right edge the label goes on the left of its line.
      const left = +px > LABEL_W + plotWidth() - 120;
      out.push(`<g class="event" data-i="${p.i}"><line x1="${px}" x2="${px}" y1="${AXIS_H - 6}" y2="${chartTop + CHART_H}" ` +
        `stroke="#37474f" stroke-dasharray="6 4"/><text x="${left ? +px - 4 : +px + 4}" y="${chartTop - 8}" ` +
        `text-anchor="${left ? "end" : "start"}" style="fill:#37474f">${esc(p.phase)} phase ${left ? "" : "→"}</text></g>`);
    }
  }

  function draw() {
    const width = charts.clientWidth;
    const out = [];
    out.push(`<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">` +
      `<rect width="6" height="6" fill="#eceff1"/><rect width="2" height="6" fill="#9aa5b1"/></pattern>` +
      `<pattern id="stripes" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="2" height="6" fill="rgba(126,87,194,0.55)"/></pattern>` +
      `<clipPath id="plot"><rect x="${LABEL_W - 1}" y="0" width="${plotWidth() + 2}" height="${viewHeight}"/></clipPath></defs>`);
    drawAxis(out, width);
    drawChartFrame(out);
    out.push(`<g clip-path="url(#plot)">`);
    drawBands(out);
    out.push(`</g>`);
    for (const node of model.nodes) drawLane(out, node);
    out.push(`<g clip-path="url(#plot)">`);
    drawPhases(out);
    const shown = visibleMessages();
    const note = document.getElementById("note");
    if (shown.length <= ARROWS_MAX) {
      for (const i of shown) drawArrow(out, i);
      note.textContent = "";
    } else {
      note.textContent = `${group(shown.length)} messages in this window: zoom in or filter to draw ` +
        `arrows (up to ${group(ARROWS_MAX)})`;
    }
    for (const m of model.markers) {
      if (m.t >= view.t0 && m.t <= view.t1) drawMarker(out, m);
    }
    drawChart(out);
    drawViolation(out);
    out.push(`</g>`);
    svg.setAttribute("width", width);
    svg.setAttribute("height", viewHeight);
    svg.innerHTML = out.join("");
    document.getElementById("window-readout").textContent =
      `window ${ms(view.t0)} – ${ms(view.t1)} · ${group(shown.length)} messages`;
    drawOverview(width);
    try {
      history.replaceState(null, "", `#t0=${(view.t0 / 1000).toFixed(3)}&t1=${(view.t1 / 1000).toFixed(3)}`);
    } catch (error) {
      // Some browsers refuse to rewrite file:// URLs; the hash is a convenience only.
    }
  }

  // ---- The overview: the whole run, small, with the visible window outlined. ----

  function drawOverview(width) {
    const plot = plotWidth();
    const ox = (t) => LABEL_W + t / model.end * plot;
    const height = model.nodes.length * (OVERVIEW_LANE_H + 1) + 8;
    const out = [];
    for (const b of model.bands) {
      out.push(`<rect x="${ox(b.start)}" y="0" width="${Math.max(ox(b.end) - ox(b.start), 1)}" height="${height}" fill="rgba(255,167,38,0.25)"/>`);
    }
    for (const s of model.segments) {
      const fill = s.role === "down" ? "#8a96a3" : (ROLE_COLORS[s.role] || ROLE_COLORS.other);
      const y = 4 + model.laneOf.get(s.node) * (OVERVIEW_LANE_H + 1);
      out.push(`<rect class="ov-segment" x="${ox(s.start).toFixed(1)}" y="${y}" width="${Math.max(ox(s.end) - ox(s.start), 0.6).toFixed(1)}" height="${OVERVIEW_LANE_H}" fill="${fill}"/>`);
    }
    if (outcome.status !== "passed") {
      out.push(`<rect x="${ox(outcome.time_us) - 1}" y="0" width="2.5" height="${height}" fill="${DROP_COLOR}"/>`);
    }
    out.push(`<text x="10" y="${height / 2 + 4}" style="font-size:11px;fill:#66717f">run</text>`,
      `<rect x="${ox(view.t0)}" y="1" width="${Math.max(ox(view.t1) - ox(view.t0), 3)}" height="${height - 2}" ` +
      `fill="rgba(33,150,243,0.10)" stroke="#1e88e5" stroke-width="1.5" rx="2"/>`);
    overview.setAttribute("width", width);
    overview.setAttribute("height", height);
    overview.innerHTML = out.join("");
  }

  // ---- Details of a clicked thing. ----

  function describe(r) {
    const m = r.message;
    switch (r.event) {
      case "deliver": return `n${r.from} → n${r.to} ${m.kind} t${m.term} i${m.index}${m.entries ? " +" + m.entries : ""}${m.ok ? "" : " (refused)"}`;
      case "drop": return `n${r.from} → n${r.to} ${m.kind} LOST (${r.reason})`;
      case "duplicate": return `n${r.from} → n${r.to} ${m.kind} will arrive twice`;
      case "role": return `n${r.node} becomes ${r.role} in term ${r.term}` + (r.leader ? `, leader n${r.leader}` : "");
      case "crash": return `n${r.node} crashes${r.mid_step ? " in the middle of a step" : ""}`;
      case "restart": return `n${r.node} restarts from its disk`;
      case "pause": return `n${r.node} pauses`;
      case "resume": return `n${r.node} resumes with ${r.backlog} queued messages`;
      case "restore": return `n${r.node} restores snapshot ${r.index}`;
      case "partition": return `partition (${r.kind}): ${r.cuts.length} links cut`;
      case "heal": return "the network heals";
      case "commit": return `n${r.node} commits up to ${r.index}`;
      case "apply": return `n${r.node} applies up to ${r.index}`;
      case "invoke": return `client ${r.client} request ${r.request} → n${r.node}`;
      case "complete": return `client ${r.client} request ${r.request}: ${r.outcome}` + (r.index ? ` at index ${r.index}` : "");
      case "phase": return `the ${r.phase} phase starts`;
      case "violation": return `VIOLATION of ${r.property}`;
      default: return r.event;
    }
  }

  function fieldRows(object, prefix) {
    const rows = [];
    for (const [key, value] of Object.entries(object)) {
      if (value !== null && typeof value === "object" && !Array.isArray(value)) {
        rows.push(...fieldRows(value, prefix + key + "."));
      } else {
        const shown = Array.isArray(value) ? JSON.stringify(value) : String(value);
        rows.push(`<tr><td>${esc(prefix + key)}</td><td>${esc(shown)}</td></tr>`);
      }
    }
    return rows;
  }

  function showRecord(i) {
    const r = records[i];
    let extra = "";
    if (isMessage(r) && r.event !== "duplicate") {
      extra = `<tr><td>in flight</td><td>${ms(r.time_us - sentAt(r))}</td></tr>`;
    }
    if (r.event === "partition") {
      const b = model.bands.find((band) => band.i === i);
      if (b) extra = `<tr><td>sides</td><td>${esc(b.groups.map((g) => g.map((n) => "n" + n).join(",")).join(" | "))}</td></tr>` +
        `<tr><td>healed</td><td>${ms(b.end)}</td></tr>`;
    }
    showDetails(describe(r), `<tr><td>record</td><td>#${i}</td></tr><tr><td>time</td><td>${ms(r.time_us)}</td></tr>` +
      fieldRows(r, "").filter((row) => !row.includes(">time_us<")).join("") + extra);
  }

  function showSegment(k) {
    const s = model.segments[k];
    const title = s.role === "down" ? `n${s.node} is down` : `n${s.node} ${s.role} in term ${s.term}`;
    showDetails(title, `<tr><td>from</td><td>${ms(s.start)}</td></tr><tr><td>to</td><td>${ms(s.end)}</td></tr>` +
      `<tr><td>lasting</td><td>${ms(s.end - s.start)}</td></tr>` +
      (s.role !== "down" ? `<tr><td>leader known</td><td>${s.leader ? "n" + s.leader : "none"}</td></tr>` : "") +
      (s.i >= 0 ? `<tr><td>record</td><td>#${s.i}</td></tr>` : ""));
  }

  function valueAt(points, t) {
    let value = null;
    for (const [pt, v] of points) {
      if (pt > t) break;
      value = v;
    }
    return value;
  }

  function showIndexesAt(t) {
    const rows = model.nodes.map((n) => {
      const commit = valueAt(model.commit.get(n), t);
      const applied = valueAt(model.applied.get(n), t);
      return `<tr><td>n${n}</td><td>commit ${commit === null ? "—" : commit}, applied ${applied === null ? "—" : applied}</td></tr>`;
    });
    showDetails(`indexes at ${ms(t)}`, rows.join(""));
  }

  function showDetails(summary, rows) {
    document.getElementById("details").innerHTML =
      `<div class="summary">${esc(summary)}</div><table>${rows}</table>`;
  }

  // ---- Interaction. ----

  let drag = null;
  svg.addEventListener("mousedown", (event) => {
    drag = { x: event.clientX, t0: view.t0, t1: view.t1, moved: false };
  });
  window.addEventListener("mousemove", (event) => {
    if (!drag) return;
    const dx = event.clientX - drag.x;
    if (Math.abs(dx) > 3) drag.moved = true;
    if (!drag.moved) return;
    svg.classList.add("dragging");
    const shift = dx / plotWidth() * (drag.t1 - drag.t0);
    setWindow(drag.t0 - shift, drag.t1 - shift);
    draw();
  });
  window.addEventListener("mouseup", () => {
    svg.classList.remove("dragging");
    setTimeout(() => { drag = null; }, 0);
  });
  svg.addEventListener("click", (event) => {
    if (drag && drag.moved) return;
    const target = event.target.closest("[data-i], [data-seg]");
    if (target && target.hasAttribute("data-seg")) {
      view.selected = "s" + target.getAttribute("data-seg");
      showSegment(Number(target.getAttribute("data-seg")));
    } else if (target) {
      view.selected = "i" + target.getAttribute("data-i");
      showRecord(Number(target.getAttribute("data-i")));
    } else if (event.target.closest("#index-chart")) {
      const box = svg.getBoundingClientRect();
      showIndexesAt(timeAt(event.clientX - box.left));
      return;
    } else {
      return;
    }
    draw();
  });
  svg.addEventListener("wheel", (event) => {
    event.preventDefault();
    const box = svg.getBoundingClientRect();
    zoom(event.deltaY > 0 ? 1.25 : 0.8, timeAt(event.clientX - box.left));
  }, { passive: false });
  svg.addEventListener("dblclick", (event) => {
    const box = svg.getBoundingClientRect();
    zoom(0.5, timeAt(event.clientX - box.left));
  });
  overview.addEventListener("click", (event) => {
    const box = overview.getBoundingClientRect();
    const t = (event.clientX - box.left - LABEL_W) / plotWidth() * model.end;
    const span = view.t1 - view.t0;
    setWindow(t - span / 2, t + span / 2);
    draw();
  });
  document.getElementById("zoom-in").addEventListener("click", () => zoom(0.5));
  document.getElementById("zoom-out").addEventListener("click", () => zoom(2));
  document.getElementById("zoom-fit").addEventListener("click", () => { setWindow(0, model.end); draw(); });
  document.getElementById("goto-violation").addEventListener("click", () => {
    const t = outcome.time_us;
    const span = Math.min(model.end, 400000);
    setWindow(t - span * 0.8, t + span * 0.2);
    draw();
    if (model.violation) showRecord(model.violation.i);
  });
  kindSelect.addEventListener("change", () => { filters.kind = kindSelect.value; draw(); });
  nodeSelect.addEventListener("change", () => { filters.node = nodeSelect.value; draw(); });
  for (const name of ["delivered", "dropped", "duplicated"]) {
    const box = document.getElementById("show-" + name);
    box.addEventListener("change", () => { filters[name] = box.checked; draw(); });
  }
  document.addEventListener("keydown", (event) => {
    if (event.target.tagName === "SELECT" || event.target.tagName === "INPUT") return;
    const span = view.t1 - view.t0;
    const actions = {
      "+": () => zoom(0.5), "=": () => zoom(0.5), "-": () => zoom(2),
      "0": () => { setWindow(0, model.end); draw(); },
      ArrowLeft: () => { setWindow(view.t0 - span / 4, view.t1 - span / 4); draw(); },
      ArrowRight: () => { setWindow(view.t0 + span / 4, view.t1 + span / 4); draw(); },
    };
    if (actions[event.key]) actions[event.key]();
  });
  window.addEventListener("resize", draw);

  // `#…&i=N` in the URL opens with record N selected (for links to one event).
  const linked = Number(hash.get("i"));
  if (hash.has("i") && Number.isInteger(linked) && linked >= 0 && linked < records.length) {
    view.selected = "i" + linked;
    showRecord(linked);
  }
  draw();
  document.body.setAttribute("data-lanes", String(model.nodes.length));
  document.body.setAttribute("data-ready", "1");
})();
