// strata HTML report. Reads the JSON data block and builds the page with textContent only:
// nothing taken from the image is ever parsed as markup.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("strata-data").textContent);
  const SEVERITIES = ["critical", "high", "medium", "low", "info"];
  const STATUSES = ["present", "deleted", "overwritten", "config"];
  const STATUS_COLOR = {
    present: "var(--present)", deleted: "var(--deleted)",
    overwritten: "var(--overwritten)", config: "var(--config)",
  };
  const ROW = 34;            // timeline row height, px (matches .tl-row)
  const MARK = 14;           // marker width + gap, px
  const MAX_MARKS = 200;     // markers drawn per layer before "+N"

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function humanSize(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let v = n, u = 0;
    while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
    return (u === 0 ? v.toFixed(0) : v.toFixed(1)) + " " + units[u];
  }

  function place(f) {
    if (f.path) return f.inner_path ? f.path + "!" + f.inner_path : f.path;
    return f.location || "image";
  }

  function statusWords(f) {
    if (f.status === "present") return "still in the final image";
    if (f.status === "config") return "in the image config (visible to anyone who pulls)";
    const by = f.removed_in_layer === null ? "" : " in layer " + f.removed_in_layer;
    return f.status + by;
  }

  const findingsByImage = data.images.map(() => []);
  for (const f of data.findings) if (findingsByImage[f.image]) findingsByImage[f.image].push(f);

  // ---- header -------------------------------------------------------------------------------
  document.getElementById("run").textContent =
    "Scanned " + data.scanned_at.replace("T", " ") + " to " + data.finished_at.replace("T", " ") +
    " UTC by strata " +
    data.tool_version + (data.command ? " — " + data.command : "") +
    (data.show_secrets ? " — secrets SHOWN (--show-secrets)" : " — secrets redacted");

  const app = document.getElementById("app");
  const errors = data.diagnostics.filter((d) => d.level === "error");
  if (errors.length || data.images.length === 0) {
    app.append(el("div", { class: "warn", id: "incomplete" },
      el("b", { text: "Incomplete scan: " }),
      data.images.length === 0 ? "no image was scanned. " : "",
      errors.length ? "part of the input was not read, so the absence of a finding proves nothing there." : "",
      el("ul", {}, ...errors.slice(0, 200).map((d) => el("li", { text: d.message })))));
  }

  const summary = el("section", { class: "image", id: "summary" }, el("h2", { text: "Summary" }));
  const cards = el("div", { class: "cards" },
    el("div", { class: "card" }, el("b", { text: String(data.findings.length) }), "findings"));
  for (const s of SEVERITIES) {
    const n = data.findings.filter((f) => f.severity === s).length;
    cards.append(el("div", { class: "card sev-" + s }, el("b", { text: String(n) }), s));
  }
  for (const s of STATUSES) {
    const n = data.findings.filter((f) => f.status === s).length;
    cards.append(el("div", { class: "card" }, el("b", { text: String(n) }), s));
  }
  summary.append(cards);
  const suppressed = Object.entries(data.suppressed).filter(([, v]) => v > 0);
  if (suppressed.length) {
    summary.append(el("p", { class: "muted" }, "Set aside: " +
      suppressed.map(([k, v]) => v + " " + k).join(", ") + "."));
  }
  const notes = data.diagnostics.filter((d) => d.level !== "error");
  if (notes.length) {
    summary.append(el("details", {}, el("summary", { text: notes.length + " warnings and notes" }),
      el("ul", {}, ...notes.slice(0, 500).map((d) => el("li", { text: d.level + ": " + d.message })))));
  }
  app.append(summary);

  // ---- per image: header, timeline, config findings --------------------------------------------
  data.images.forEach((img, i) => {
    const mine = findingsByImage[i];
    const sec = el("section", { class: "image", id: "image-" + i });
    sec.append(el("h2", { text: img.references.length ? img.references.join(", ") : img.target }));
    sec.append(el("dl", { class: "meta" },
      el("dt", { text: "target" }), el("dd", { class: "mono", text: img.target }),
      el("dt", { text: "digest" }), el("dd", { class: "mono", text: img.digest }),
      el("dt", { text: "platform" }), el("dd", { text: img.platform || "unknown" }),
      el("dt", { text: "size" }), el("dd", { text: humanSize(img.total_size) + " in " + img.layers.length + " layers" }),
      el("dt", { text: "findings" }), el("dd", { text: String(mine.length) })));
    sec.append(el("h3", { text: "Layer timeline" }));
    sec.append(el("div", { class: "legend" }, ...STATUSES.slice(0, 3).map((s) =>
      el("span", { style: "--c: " + STATUS_COLOR[s], text: s }))));
    sec.append(timeline(img, mine));
    const config = mine.filter((f) => f.layer_index === null);
    sec.append(el("h3", { text: "Config and history findings (" + config.length + ")" }));
    if (config.length) {
      sec.append(el("ul", { class: "config-findings" }, ...config.map((f) =>
        el("li", { "data-finding": f.id },
          el("span", { class: "sev sev-" + f.severity, text: f.severity }), " ",
          el("a", { href: "#finding=" + f.id, text: f.rule_id }), " in ",
          el("code", { text: f.location || "config" }), " — ", f.shown))));
    } else {
      sec.append(el("p", { class: "muted", text: "None." }));
    }
    app.append(sec);
  });

  // A layer the scan did not read whole says so before its instruction (`read` in the JSON
  // contract; absent in reports of older versions).
  function unreadMark(layer) {
    const words = { partial: "read only in part", none: "not read" }[layer.read];
    return words ? [el("b", { class: "unread", text: words + " — " })] : [];
  }

  function timeline(img, mine) {
    const box = el("div", { class: "timeline" });
    const maxSize = Math.max(1, ...img.layers.map((l) => l.size));
    const byLayer = img.layers.map(() => []);
    for (const f of mine) if (f.layer_index !== null && byLayer[f.layer_index]) byLayer[f.layer_index].push(f);
    const links = [];   // {x, from, to, status}
    img.layers.forEach((layer, li) => {
      const marks = el("div", { class: "marks" });
      const groups = new Map();
      byLayer[li].forEach((f, k) => {
        if (k < MAX_MARKS) {
          marks.append(el("button", {
            class: "mark st-" + f.status, "data-finding": f.id,
            title: f.rule_id + " at " + place(f) + " — " + statusWords(f),
            "aria-label": f.rule_id + " " + f.status,
            onclick: () => select(f.id, true),
          }));
          const key = f.removed_in_layer + ":" + f.status;
          if (f.removed_in_layer !== null && !groups.has(key)) {
            groups.set(key, true);
            links.push({ x: k * MARK + 5, from: li, to: f.removed_in_layer, status: f.status });
          }
        }
      });
      if (byLayer[li].length > MAX_MARKS) {
        marks.append(el("span", { class: "mark more", "data-count": byLayer[li].length - MAX_MARKS,
          text: "+" + (byLayer[li].length - MAX_MARKS) }));
      }
      const width = Math.max(1, Math.round(100 * layer.size / maxSize));
      box.append(el("div", { class: "tl-row", "data-layer": li },
        el("span", { class: "idx", text: "layer " + li }),
        el("span", {}, el("div", { class: "bar", style: "width: " + width + "%" })),
        el("span", { class: "size", text: humanSize(layer.size) }),
        el("span", { class: "instr mono", title: layer.created_by || "" },
          ...unreadMark(layer), layer.created_by || "—"),
        marks));
    });
    if (links.length) {
      const ns = "http://www.w3.org/2000/svg";
      const svg = document.createElementNS(ns, "svg");
      svg.setAttribute("class", "links");
      svg.setAttribute("height", String(img.layers.length * ROW));
      for (const l of links) {
        const line = document.createElementNS(ns, "line");
        line.setAttribute("x1", l.x); line.setAttribute("x2", l.x);
        line.setAttribute("y1", l.from * ROW + ROW / 2 + 5);
        line.setAttribute("y2", l.to * ROW + ROW / 2);
        line.setAttribute("stroke", getComputedStyle(document.documentElement)
          .getPropertyValue("--" + l.status) || "#555");
        line.setAttribute("data-from", l.from); line.setAttribute("data-to", l.to);
        svg.append(line);
        const cross = document.createElementNS(ns, "text");
        cross.setAttribute("x", l.x - 4); cross.setAttribute("y", l.to * ROW + ROW / 2 + 4);
        cross.setAttribute("font-size", "12");
        cross.textContent = "✕";
        svg.append(cross);
      }
      // The marker column is the last grid column; align the overlay with it after layout.
      requestAnimationFrame(() => {
        const first = box.querySelector(".marks");
        if (first) { svg.style.left = first.offsetLeft + "px"; svg.style.width = first.offsetWidth + "px"; }
      });
      box.append(svg);
    }
    return box;
  }

  // ---- findings table with filters and detail panel ------------------------------------------
  const tableSec = el("section", { class: "image", id: "findings" }, el("h2", { text: "Findings" }));
  const filters = { severity: "", status: "", rule: "", layer: "", validation: "", text: "" };
  function select_(name, options) {
    return el("select", { id: "filter-" + name, onchange: (e) => { filters[name] = e.target.value; render(); } },
      el("option", { value: "", text: "all" }), ...options.map((o) => el("option", { value: o, text: o })));
  }
  const rules = [...new Set(data.findings.map((f) => f.rule_id))].sort();
  const layers = [...new Set(data.findings.map((f) => f.layer_index === null ? "config" : String(f.layer_index)))]
    .sort((a, b) => (a === "config") - (b === "config") || Number(a) - Number(b));
  const count = el("span", { id: "count" });
  tableSec.append(el("div", { class: "filters" },
    el("label", { text: "severity" }), select_("severity", SEVERITIES),
    el("label", { text: "status" }), select_("status", STATUSES),
    el("label", { text: "rule" }), select_("rule", rules),
    el("label", { text: "layer" }), select_("layer", layers),
    el("label", { text: "validation" }), select_("validation", ["validated", "not validated"]),
    el("input", { id: "filter-text", type: "search", placeholder: "path, rule, instruction…",
      oninput: (e) => { filters.text = e.target.value.toLowerCase(); render(); } }),
    count));
  const columns = [
    ["severity", (f) => SEVERITIES.length - SEVERITIES.indexOf(f.severity)],
    ["rule", (f) => f.rule_id],
    ["status", (f) => STATUSES.indexOf(f.status)],
    ["layer", (f) => f.layer_index === null ? -1 : f.layer_index],
    ["path", (f) => place(f) + ":" + String(f.line || 0).padStart(9, "0")],
    ["validation", (f) => f.validation || ""],
  ];
  if (data.images.length > 1) columns.push(["image", (f) => f.image]);
  let sort = { col: 0, dir: -1 };
  const thead = el("thead", {}, el("tr", {}, ...columns.map(([name], ci) =>
    el("th", { "data-col": name, onclick: () => {
      sort = { col: ci, dir: sort.col === ci ? -sort.dir : 1 }; render();
    } }, name))));
  const tbody = el("tbody", {});
  const detail = el("aside", { id: "detail" }, el("p", { class: "muted", text: "Select a finding to see its details." }));
  tableSec.append(el("div", { class: "layout" }, el("div", {}, el("table", { id: "findings-table" }, thead, tbody)), detail));
  app.append(tableSec);

  function matches(f) {
    if (filters.severity && f.severity !== filters.severity) return false;
    if (filters.status && f.status !== filters.status) return false;
    if (filters.rule && f.rule_id !== filters.rule) return false;
    if (filters.layer && (f.layer_index === null ? "config" : String(f.layer_index)) !== filters.layer) return false;
    if (filters.validation === "validated" && !f.validation) return false;
    if (filters.validation === "not validated" && f.validation) return false;
    if (filters.text) {
      const hay = [place(f), f.rule_id, f.rule_name, f.created_by || "", f.location || "",
        ...(f.workloads || []).map((w) => w.namespace + "/" + w.pod + "/" + w.container)].join(" ").toLowerCase();
      if (!hay.includes(filters.text)) return false;
    }
    return true;
  }

  let selected = null;
  function render() {
    const key = columns[sort.col][1];
    const rows = data.findings.filter(matches).sort((a, b) => {
      const x = key(a), y = key(b);
      return (x < y ? -1 : x > y ? 1 : a.id - b.id) * sort.dir;
    });
    const frag = document.createDocumentFragment();
    for (const f of rows) {
      const cells = [
        el("td", { class: "sev sev-" + f.severity, text: f.severity }),
        el("td", { class: "mono", text: f.rule_id }),
        el("td", { text: f.status + (f.removed_in_layer === null ? "" : " (layer " + f.removed_in_layer + ")") }),
        el("td", { text: f.layer_index === null ? "config" : String(f.layer_index) }),
        el("td", { class: "path mono", text: place(f) + (f.line ? ":" + f.line : "") }),
        el("td", { text: f.validation || "" }),
      ];
      if (data.images.length > 1) cells.push(el("td", { class: "mono", text: data.images[f.image] ? data.images[f.image].target : "" }));
      frag.append(el("tr", {
        "data-finding": f.id, "data-fingerprint": f.fingerprint, "data-severity": f.severity,
        "data-status": f.status, class: f.id === selected ? "selected" : null,
        onclick: () => select(f.id, false),
      }, ...cells));
    }
    tbody.replaceChildren(frag);
    count.textContent = rows.length + " of " + data.findings.length + " shown";
    thead.querySelectorAll("th").forEach((th, ci) =>
      th.setAttribute("aria-sort", ci === sort.col ? (sort.dir > 0 ? "ascending" : "descending") : "none"));
  }

  function row(label, value, mono) {
    return [el("dt", { text: label }), el("dd", { class: mono ? "mono" : null, text: value })];
  }

  function copyBlock(text, id) {
    const pre = el("pre", { id, text });
    const button = el("button", { class: "copy", type: "button", text: "copy",
      onclick: () => navigator.clipboard && navigator.clipboard.writeText(text) });
    return el("div", {}, pre, button);
  }

  function select(id, scroll) {
    const f = data.findings[id];
    if (!f) return;
    selected = id;
    tbody.querySelectorAll("tr.selected").forEach((r) => r.classList.remove("selected"));
    const tr = tbody.querySelector('tr[data-finding="' + id + '"]');
    if (tr) { tr.classList.add("selected"); if (scroll) tr.scrollIntoView({ block: "nearest" }); }
    const img = data.images[f.image];
    const dl = el("dl", { class: "meta" },
      ...row("rule", f.rule_name + " (" + f.rule_id + ")"),
      ...row("severity", f.severity + (f.severity !== f.rule_severity ? " (rule: " + f.rule_severity + ", " + (f.context || "capped") + ")" : "")),
      ...row("secret", f.shown, true),
      ...row("secret sha256", f.secret_sha256, true),
      ...row("image", img ? img.target + "@" + img.digest : "", true),
      ...row("layer", f.layer_index === null ? "config" : f.layer_index + " (" + (f.layer_digest || "") + ")", true),
      ...row("file", place(f) + (f.line ? " line " + f.line : ""), true),
      ...row("status", statusWords(f)),
      ...row("added by", f.created_by || "—", true),
      ...row("detector", f.detector),
      ...row("validation", f.validation || "none"),
      ...row("fingerprint", f.fingerprint, true));
    if (f.removed_in_layer !== null && img && img.layers[f.removed_in_layer]) {
      dl.append(...row("removed by", img.layers[f.removed_in_layer].created_by || "layer " + f.removed_in_layer, true));
    }
    if (f.workloads && f.workloads.length) {
      // Kubernetes containers that run the image (--k8s-pods): one per line.
      const names = f.workloads.map((w) => w.namespace + "/" + w.pod + "/" + w.container);
      dl.append(el("dt", { text: "run by" }),
        el("dd", { class: "mono", id: "workloads" }, ...names.map((n) => el("div", { text: n }))));
    }
    const parts = [el("h3", { text: "Finding " + id }), dl];
    if (f.extract_command) {
      parts.push(el("h3", { text: "Recover the file" }), copyBlock(f.extract_command, "extract-command"));
    }
    parts.push(el("h3", { text: "Suppress" }),
      el("p", { class: "muted", text: "Add to .strata.toml (a reason is required):" }),
      copyBlock('[[allow]]\nfingerprint = "' + f.fingerprint + '"\nreason = "…"', "allow-entry"),
      el("p", { class: "muted", text: "or keep a baseline: strata scan --format json -o baseline.json …, then strata scan --baseline baseline.json …" }));
    detail.replaceChildren(...parts);
  }

  // Filters and the selection can be set from the address: #severity=high&status=deleted&finding=3
  function fromHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    for (const name of Object.keys(filters)) {
      if (!params.has(name)) continue;
      filters[name] = name === "text" ? params.get(name).toLowerCase() : params.get(name);
      const input = document.getElementById("filter-" + name);
      if (input) input.value = params.get(name);
    }
    render();
    if (params.has("finding")) select(Number(params.get("finding")), true);
  }
  window.addEventListener("hashchange", fromHash);
  fromHash();
  // How long the page took to build, for the browser test with 10,000 findings.
  document.body.setAttribute("data-render-ms", String(Math.round(performance.now())));
})();
