// Asks before a form with data-confirm="…" is sent (lifecycle changes, declaring a winner).
"use strict";

document.addEventListener("submit", function (event) {
  const form = event.target;
  const question = form.dataset ? form.dataset.confirm : null;
  if (question && !window.confirm(question)) event.preventDefault();
});
