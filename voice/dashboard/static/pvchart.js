/* pvchart.js — postvoice's own small chart library: line, bar and histogram charts as SVG.
 *
 * No dependencies. A chart is a `<div class="chart" data-chart="name" data-spec='{…}'>`; on
 * load every such element is drawn (and redrawn when its width changes). The spec:
 *
 *   {"type": "line" | "bar" | "histogram",
 *    "labels": ["2025-03-10", …],                 // line and bar: one per x position
 *    "series": [{"name": "p50", "values": [612, null, …]}, …],   // null: no value that day
 *    "bins": [{"from": 0, "to": 250, "count": 3}, …],            // histogram ("to": null = open)
 *    "unit": "ms" | "%" | "",  "min": 0, "max": 100,             // y axis (optional)
 *    "stacked": true,   "horizontal": true,                      // bar options
 *    "integer": true,                                            // counts: whole-number ticks
 *    "empty": "No calls yet."}                                   // said when there is no data
 *
 * Every bar and point carries a <title>, which browsers show as a tooltip. Days given as
 * "YYYY-MM-DD" are shown as "Mar 10".
 */
(function (root) {
  "use strict";

  var NS = "http://www.w3.org/2000/svg";
  var PALETTE = ["#2457c5", "#d9822b", "#1b7f4b", "#b3261e", "#7a4cc2", "#5f6b7a"];
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  var HEIGHT = 220;
  var PAD = { top: 16, right: 24, bottom: 34, left: 48 };

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    for (var key in attrs) {
      if (Object.prototype.hasOwnProperty.call(attrs, key) && attrs[key] !== null) {
        node.setAttribute(key, String(attrs[key]));
      }
    }
    if (parent) parent.appendChild(node);
    return node;
  }

  function text(parent, x, y, words, attrs) {
    var node = el("text", Object.assign({ x: x, y: y }, attrs || {}), parent);
    node.textContent = words;
    return node;
  }

  function tip(parent, words) {
    el("title", {}, parent).textContent = words;
  }

  function isNumber(v) {
    return typeof v === "number" && isFinite(v);
  }

  /* Round axis ticks: 0, 250, 500… covering [min, max] in about `count` steps. */
  function niceTicks(min, max, count, integer) {
    if (!isNumber(min) || !isNumber(max)) return { min: 0, max: 1, ticks: [0, 1] };
    if (min === max) { max = min + 1; }
    var raw = (max - min) / Math.max(1, count || 5);
    if (integer) raw = Math.max(1, raw);
    var power = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = integer && power < 10 ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10];
    var step = power;
    for (var i = 0; i < steps.length; i++) {
      if (steps[i] * power >= raw) { step = steps[i] * power; break; }
    }
    var lo = Math.floor(min / step) * step;
    var hi = Math.ceil(max / step) * step;
    var ticks = [];
    for (var t = lo; t <= hi + step / 2; t += step) ticks.push(Math.round(t * 1e6) / 1e6);
    return { min: lo, max: hi, ticks: ticks };
  }

  function format(value, unit) {
    if (!isNumber(value)) return "\u2013";
    var abs = Math.abs(value);
    var shown;
    if (unit === "ms" && abs >= 1000) return trim((value / 1000).toFixed(abs >= 10000 ? 0 : 2)) + " s";
    if (unit === "s" && abs >= 120) return (value / 60).toFixed(abs >= 1200 ? 0 : 1) + " min";
    if (abs >= 1e6) shown = (value / 1e6).toFixed(1) + "M";
    else if (abs >= 1e4) shown = (value / 1e3).toFixed(0) + "k";
    else if (Number.isInteger(value)) shown = String(value);
    else shown = value.toFixed(abs < 10 ? 1 : 0);
    if (unit === "%") return shown + "%";
    return unit ? shown + " " + unit : shown;
  }

  function trim(fixed) {
    return fixed.indexOf(".") < 0 ? fixed : fixed.replace(/\.?0+$/, "");
  }

  function dayLabel(label) {
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(label));
    return m ? MONTHS[parseInt(m[2], 10) - 1] + " " + parseInt(m[3], 10) : String(label);
  }

  function clear(container) {
    while (container.firstChild) container.removeChild(container.firstChild);
  }

  /* An empty chart still draws its frame, with the reason there is nothing in it. */
  function empty(container, message) {
    clear(container);
    var width = Math.max(260, Math.floor(container.clientWidth || 480));
    var height = HEIGHT - 20;
    var svg = el("svg", {
      xmlns: NS, width: width, height: height, viewBox: "0 0 " + width + " " + height, role: "img",
      "class": "pvchart chart-empty", "font-family": "system-ui, sans-serif", "font-size": 13
    }, container);
    el("rect", { x: 0.5, y: 0.5, width: width - 1, height: height - 1, rx: 6, fill: "#fafbfc", stroke: "#e3e7ee", "stroke-dasharray": "4 3" }, svg);
    text(svg, width / 2, height / 2 + 4, message || "No data yet.", { "text-anchor": "middle", fill: "#5f6b7a" });
  }

  /* An <svg> filling the container's width, and the plot area inside the axes. */
  function frame(container, spec) {
    clear(container);
    var width = Math.max(260, Math.floor(container.clientWidth || 480));
    var height = spec.height || HEIGHT;
    var pad = Object.assign({}, PAD);
    if (spec.horizontal) {  // room for the longest category name, up to 45% of the width
      var longest = (spec.labels || []).reduce(function (m, l) { return Math.max(m, String(l).length); }, 4);
      pad.left = Math.min(width * 0.45, longest * 6.4 + 16);
    }
    var svg = el("svg", {
      xmlns: NS, width: width, height: height, viewBox: "0 0 " + width + " " + height,
      role: "img", "class": "pvchart", "font-family": "system-ui, sans-serif", "font-size": 11
    }, container);
    if (spec.title) tip(svg, spec.title);
    return {
      svg: svg,
      x: pad.left, y: pad.top,
      w: Math.max(40, width - pad.left - pad.right),
      h: Math.max(40, height - pad.top - pad.bottom)
    };
  }

  function valueAxis(box, scale, unit, horizontal) {
    var axis = el("g", { "class": "axis" }, box.svg);
    scale.ticks.forEach(function (t) {
      var pos = scale.at(t);
      if (horizontal) {
        el("line", { x1: pos, x2: pos, y1: box.y, y2: box.y + box.h, stroke: "#e3e7ee" }, axis);
        text(axis, pos, box.y + box.h + 14, format(t, unit), { "text-anchor": "middle", fill: "#5f6b7a" });
      } else {
        el("line", { x1: box.x, x2: box.x + box.w, y1: pos, y2: pos, stroke: "#e3e7ee" }, axis);
        text(axis, box.x - 6, pos + 4, format(t, unit), { "text-anchor": "end", fill: "#5f6b7a" });
      }
    });
  }

  /* Category labels along x, thinned so they never collide. */
  function categoryAxis(box, labels, centre) {
    var axis = el("g", { "class": "axis" }, box.svg);
    var widest = labels.reduce(function (m, l) { return Math.max(m, dayLabel(l).length); }, 1) * 6.5 + 8;
    var every = Math.max(1, Math.ceil(labels.length * widest / box.w));
    labels.forEach(function (label, i) {
      if (i % every !== 0 && i !== labels.length - 1) return;
      if (i === labels.length - 1 && i % every !== 0 && (i % every) < every / 2) return;
      text(axis, centre(i), box.y + box.h + 14, dayLabel(label), { "text-anchor": "middle", fill: "#5f6b7a" });
    });
    el("line", { x1: box.x, x2: box.x + box.w, y1: box.y + box.h, y2: box.y + box.h, stroke: "#9aa3b2" }, axis);
  }

  function legend(box, series) {
    if (series.length < 2) return;
    var g = el("g", { "class": "legend" }, box.svg);
    var x = box.x + box.w;
    for (var i = series.length - 1; i >= 0; i--) {
      var name = String(series[i].name || "");
      x -= name.length * 6.5 + 22;
      el("rect", { x: x, y: 2, width: 10, height: 10, rx: 2, fill: colour(series, i) }, g);
      text(g, x + 14, 11, name, { fill: "#1d2330" });
    }
  }

  function colour(series, i) {
    return series[i].colour || PALETTE[i % PALETTE.length];
  }

  function linearScale(domain, from, to) {
    var span = domain.max - domain.min || 1;
    return {
      ticks: domain.ticks,
      at: function (v) { return from + (v - domain.min) / span * (to - from); }
    };
  }

  function extent(values, spec, zeroBased) {
    var nums = values.filter(isNumber);
    var lo = isNumber(spec.min) ? spec.min : Math.min.apply(null, zeroBased ? nums.concat([0]) : nums);
    var hi = isNumber(spec.max) ? spec.max : Math.max.apply(null, nums);
    var ticks = niceTicks(lo, hi, 4, !!spec.integer);
    if (isNumber(spec.min)) ticks.min = spec.min;
    if (isNumber(spec.max)) { ticks.max = spec.max; ticks.ticks = ticks.ticks.filter(function (t) { return t <= spec.max; }); }
    return ticks;
  }

  function seriesOf(spec) {
    return (spec.series || []).filter(function (s) { return Array.isArray(s.values); });
  }

  /* Lines over categories; a null value breaks the line (no measurement that day). */
  function line(container, spec) {
    var labels = spec.labels || [];
    var series = seriesOf(spec);
    var all = [].concat.apply([], series.map(function (s) { return s.values; }));
    if (!labels.length || !all.some(isNumber)) return empty(container, spec.empty);
    var box = frame(container, spec);
    var scale = linearScale(extent(all, spec, true), box.y + box.h, box.y);
    valueAxis(box, scale, spec.unit);
    var step = labels.length > 1 ? box.w / (labels.length - 1) : 0;
    var centre = function (i) { return labels.length > 1 ? box.x + i * step : box.x + box.w / 2; };
    categoryAxis(box, labels, centre);
    series.forEach(function (s, k) {
      var g = el("g", { "class": "series", "data-series": s.name }, box.svg);
      var d = "";
      var pen = false;
      s.values.forEach(function (v, i) {
        if (!isNumber(v)) { pen = false; return; }
        d += (pen ? "L" : "M") + centre(i).toFixed(1) + "," + scale.at(v).toFixed(1);
        pen = true;
      });
      el("path", { d: d, fill: "none", stroke: colour(series, k), "stroke-width": 2, "stroke-linejoin": "round" }, g);
      s.values.forEach(function (v, i) {
        if (!isNumber(v)) return;
        var dot = el("circle", { cx: centre(i), cy: scale.at(v), r: labels.length > 60 ? 2 : 3.2, fill: colour(series, k) }, g);
        tip(dot, dayLabel(labels[i]) + " \u00b7 " + s.name + ": " + format(v, spec.unit));
      });
    });
    legend(box, series);
  }

  /* Bars per category: side by side, or stacked; across instead of up with `horizontal`. */
  function bar(container, spec) {
    var labels = spec.labels || [];
    var series = seriesOf(spec);
    var totals = labels.map(function (_, i) {
      return series.reduce(function (sum, s) { return sum + (isNumber(s.values[i]) ? s.values[i] : 0); }, 0);
    });
    var all = spec.stacked ? totals : [].concat.apply([], series.map(function (s) { return s.values; }));
    if (!labels.length || !all.some(function (v) { return isNumber(v) && v !== 0; })) {
      return empty(container, spec.empty);
    }
    if (spec.horizontal) spec = Object.assign({ height: Math.max(90, labels.length * 26 + 50) }, spec);
    var box = frame(container, spec);
    var domain = extent(all, spec, true);
    var horizontal = !!spec.horizontal;
    var scale = horizontal ? linearScale(domain, box.x, box.x + box.w) : linearScale(domain, box.y + box.h, box.y);
    valueAxis(box, scale, spec.unit, horizontal);
    var band = (horizontal ? box.h : box.w) / labels.length;
    var inner = Math.max(1, band * 0.72);
    var groups = spec.stacked ? 1 : series.length;
    var thick = inner / groups;
    var start = function (i) { return (horizontal ? box.y : box.x) + i * band + (band - inner) / 2; };
    if (horizontal) {
      var axis = el("g", { "class": "axis" }, box.svg);
      var room = Math.floor((box.x - 12) / 6.4);
      labels.forEach(function (label, i) {
        var words = dayLabel(label);
        var shown = words.length > room ? words.slice(0, Math.max(1, room - 1)) + "\u2026" : words;
        tip(text(axis, box.x - 6, start(i) + inner / 2 + 4, shown, { "text-anchor": "end", fill: "#1d2330" }), words);
      });
    } else {
      categoryAxis(box, labels, function (i) { return start(i) + inner / 2; });
    }
    series.forEach(function (s, k) {
      var g = el("g", { "class": "series", "data-series": s.name }, box.svg);
      s.values.forEach(function (v, i) {
        if (!isNumber(v) || v === 0) return;
        var below = 0;
        if (spec.stacked) {
          for (var j = 0; j < k; j++) below += isNumber(series[j].values[i]) ? series[j].values[i] : 0;
        }
        var from = scale.at(below > 0 ? below : Math.max(domain.min, 0));
        var to = scale.at(below + v);
        var across = start(i) + (spec.stacked ? 0 : k * thick);
        var rect = horizontal
          ? { x: Math.min(from, to), y: across, width: Math.max(1, Math.abs(to - from)), height: Math.max(1, thick - 1) }
          : { x: across, y: Math.min(from, to), width: Math.max(1, thick - 1), height: Math.max(1, Math.abs(to - from)) };
        rect.fill = colour(series, k);
        var r = el("rect", rect, g);
        var name = series.length > 1 ? " \u00b7 " + s.name : "";
        tip(r, dayLabel(labels[i]) + name + ": " + format(v, spec.unit));
      });
    });
    legend(box, series);
  }

  /* Counts per value range, bars touching; the last bin may be open ("4 s and more"). */
  function histogram(container, spec) {
    var bins = (spec.bins || []).filter(function (b) { return isNumber(b.count); });
    if (!bins.some(function (b) { return b.count > 0; })) return empty(container, spec.empty);
    var box = frame(container, spec);
    var domain = extent(bins.map(function (b) { return b.count; }), { min: 0, integer: true }, true);
    var scale = linearScale(domain, box.y + box.h, box.y);
    valueAxis(box, scale, "");
    var width = box.w / bins.length;
    var g = el("g", { "class": "series" }, box.svg);
    var axis = el("g", { "class": "axis" }, box.svg);
    var every = Math.max(1, Math.ceil(bins.length * 44 / box.w));
    bins.forEach(function (b, i) {
      var x = box.x + i * width;
      var range = b.to === null || b.to === undefined
        ? format(b.from, spec.unit) + " and more"
        : format(b.from, spec.unit) + " \u2013 " + format(b.to, spec.unit);
      if (b.count > 0) {
        var top = scale.at(b.count);
        var r = el("rect", { x: x + 0.5, y: top, width: Math.max(1, width - 1), height: box.y + box.h - top, fill: PALETTE[0] }, g);
        tip(r, range + ": " + b.count);
      }
      if (i % every === 0) {
        text(axis, x, box.y + box.h + 14, format(b.from, spec.unit), { "text-anchor": "middle", fill: "#5f6b7a" });
      }
    });
    el("line", { x1: box.x, x2: box.x + box.w, y1: box.y + box.h, y2: box.y + box.h, stroke: "#9aa3b2" }, axis);
  }

  var TYPES = { line: line, bar: bar, histogram: histogram };

  /* Draw one `.chart` element from its data-spec; a broken spec says so instead of throwing. */
  function render(container) {
    var spec;
    try {
      spec = JSON.parse(container.getAttribute("data-spec") || "{}");
    } catch (e) {
      return empty(container, "This chart's data could not be read.");
    }
    var draw = TYPES[spec.type];
    if (!draw) return empty(container, "Unknown chart type: " + spec.type);
    try {
      draw(container, spec);
      container.setAttribute("data-drawn", "true");
    } catch (e) {
      empty(container, "This chart could not be drawn.");
      if (root.console) root.console.error("pvchart:", e);
    }
  }

  function init(scope) {
    var charts = (scope || document).querySelectorAll(".chart[data-spec]");
    Array.prototype.forEach.call(charts, render);
    return charts.length;
  }

  root.PVChart = { line: line, bar: bar, histogram: histogram, render: render, init: init, niceTicks: niceTicks, format: format };

  if (root.document) {
    var lastWidth = {};
    var redraw = function () {
      Array.prototype.forEach.call(document.querySelectorAll(".chart[data-spec]"), function (c, i) {
        var w = c.clientWidth;
        if (lastWidth[i] !== w) { lastWidth[i] = w; render(c); }
      });
    };
    var timer = null;
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", redraw);
    else redraw();
    root.addEventListener("resize", function () {
      clearTimeout(timer);
      timer = setTimeout(redraw, 150);
    });
  }
})(window);
