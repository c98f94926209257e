// When the kind changes, propose its example parameters and its cost model (unless edited).
"use strict";

(function () {
  const kind = document.getElementById("kind");
  const params = document.getElementById("params");
  const cost = document.getElementById("cost_model");
  if (!kind || !params || !cost) return;
  let proposed = kind.selectedOptions[0].dataset.params;
  kind.addEventListener("change", function () {
    const option = kind.selectedOptions[0];
    if (params.value.trim() === "" || params.value === proposed) params.value = option.dataset.params;
    proposed = option.dataset.params;
    cost.value = option.dataset.cost;
  });
})();
