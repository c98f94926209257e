// The experiment form's light behaviour: variant rows, the weight sum, the design's fields,
// the targeting share and the power calculator. The form works without it.
"use strict";

(function () {
  const form = document.getElementById("experiment-form");
  if (!form) return;
  const rows = document.getElementById("variant-rows");

  // --- variants ----------------------------------------------------------------------------
  function renumber() {
    if (!rows) return;
    rows.querySelectorAll("tr.variant-row").forEach(function (row, index) {
      row.querySelectorAll("[name], [id], [for]").forEach(function (el) {
        ["name", "id", "for"].forEach(function (attr) {
          const value = el.getAttribute(attr);
          if (value) el.setAttribute(attr, value.replace(/^variants-\d+-/, "variants-" + index + "-"));
        });
      });
    });
  }

  function weightInputs() {
    return rows ? Array.from(rows.querySelectorAll("input.weight")) : [];
  }

  function showSum() {
    const out = document.getElementById("weight-sum");
    if (!out) return;
    const total = weightInputs().reduce(function (sum, input) {
      return sum + (parseFloat(input.value) || 0);
    }, 0);
    const ok = Math.abs(total - 1) < 1e-6;
    out.textContent = "Weights sum to " + (Math.round(total * 1e6) / 1e6) + (ok ? " ✓" : " — they must sum to 1");
    out.className = ok ? "muted" : "error";
  }

  if (rows) {
    document.getElementById("add-variant").addEventListener("click", function () {
      const last = rows.querySelector("tr.variant-row:last-child");
      const row = last.cloneNode(true);
      row.querySelectorAll("input").forEach(function (input) { input.value = ""; });
      row.querySelectorAll("select").forEach(function (select) { select.selectedIndex = 0; });
      row.querySelectorAll(".error").forEach(function (el) { el.remove(); });
      row.querySelectorAll(".has-error").forEach(function (el) { el.classList.remove("has-error"); });
      rows.appendChild(row);
      renumber();
      showSum();
      row.querySelector("input").focus();
    });
    rows.addEventListener("click", function (event) {
      const button = event.target.closest("button.remove-variant");
      if (!button) return;
      if (rows.querySelectorAll("tr.variant-row").length <= 2) {
        window.alert("An experiment needs at least two variants.");
        return;
      }
      button.closest("tr").remove();
      renumber();
      showSum();
    });
    rows.addEventListener("input", showSum);
    document.getElementById("equal-weights").addEventListener("click", function () {
      const inputs = weightInputs();
      // equal shares rounded to 4 places, the rounding remainder on the control, so they sum to 1
      const share = Math.floor(10000 / inputs.length) / 10000;
      inputs.forEach(function (input, i) {
        input.value = i === 0 ? (1 - share * (inputs.length - 1)).toFixed(4) : share.toFixed(4);
      });
      showSum();
    });
    showSum();
  }

  // --- design ------------------------------------------------------------------------------
  const designType = document.getElementById("design_type");
  const groupSequential = document.getElementById("group-sequential");
  function toggleDesign() {
    if (designType && groupSequential) groupSequential.hidden = designType.value !== "group_sequential";
  }
  if (designType) designType.addEventListener("change", toggleDesign);
  toggleDesign();

  // --- targeting share ---------------------------------------------------------------------
  const condition = document.getElementById("condition");
  const shareOut = document.getElementById("targeting-share");
  function checkCondition() {
    const url = shareOut.dataset.url + "?condition=" + encodeURIComponent(condition.value);
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        if (body.message) {
          shareOut.textContent = "Condition: " + body.message;
          shareOut.className = "hint error";
        } else {
          shareOut.textContent = (body.share * 100).toFixed(1) + "% of a sample of " + body.sample +
            " simulated shop users qualify.";
          shareOut.className = "hint";
        }
      });
  }
  if (condition && shareOut) {
    document.getElementById("check-condition").addEventListener("click", checkCondition);
  }

  // --- power calculator --------------------------------------------------------------------
  const calculator = document.getElementById("power-calculator");
  const result = document.getElementById("power-result");
  function value(id) { return document.getElementById(id).value; }
  function fieldValue(id, fallback) {
    const el = document.getElementById(id);
    return el && el.value !== "" ? el.value : fallback;
  }
  function runPower() {
    const params = new URLSearchParams({
      baseline: value("power-baseline"),
      std_dev: value("power-std"),
      relative_mde: value("power-mde"),
      power: value("power-power"),
      daily_units: value("power-daily"),
      alpha: fieldValue("design_alpha", "0.05"),
      coverage: fieldValue("coverage", "1"),
      arms: String(rows ? rows.querySelectorAll("tr.variant-row").length : 2),
    });
    fetch(calculator.dataset.url + "?" + params.toString(), {
      headers: { Accept: "application/json" }, credentials: "same-origin",
    })
      .then(function (response) { return response.json(); })
      .then(function (plan) {
        result.replaceChildren();
        if (plan.message) {
          result.textContent = plan.field + ": " + plan.message;
          result.className = "error";
          return;
        }
        result.className = "";
        const table = document.createElement("table");
        [
          ["", "Fixed horizon", "Sequential"],
          ["Users per arm", plan.n_per_arm_fixed, plan.n_per_arm_sequential],
          ["Users in total", plan.n_total_fixed, plan.n_total_sequential],
          ["Days", plan.days_fixed, plan.days_sequential],
        ].forEach(function (cells, i) {
          const tr = document.createElement("tr");
          cells.forEach(function (text) {
            const td = document.createElement(i === 0 ? "th" : "td");
            td.textContent = text === null ? "—" : String(text).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
            tr.appendChild(td);
          });
          table.appendChild(tr);
        });
        result.appendChild(table);
        const use = document.createElement("button");
        use.type = "button";
        use.id = "power-use";
        use.textContent = "Use N* = " + plan.n_star + " (planned users " + plan.n_total_fixed + ")";
        use.addEventListener("click", function () {
          const nStar = document.getElementById("design_n_star");
          const planned = document.getElementById("design_planned_n");
          if (nStar) nStar.value = plan.n_star;
          if (planned) planned.value = plan.n_total_fixed;
        });
        result.appendChild(use);
      });
  }
  if (calculator) document.getElementById("power-run").addEventListener("click", runPower);
})();
