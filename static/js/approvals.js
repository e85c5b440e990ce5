// The approvals page's bulk bar follows the selection: it says how many requests are ticked,
// offers "Approve selected" and "Deny selected" only when some are (and stays in view while
// they are: the stylesheet keeps `data-active` at the screen's bottom), selects or clears the
// whole page at once, and goes away once nothing on the page waits any more (each inline
// decision swaps its row for its outcome). Without this script the bar is always there, and
// the server says so when nothing was ticked.
(function () {
  "use strict";

  function update() {
    var form = document.getElementById("bulk");
    if (!form) { return; }
    var bar = form.querySelector("[data-bulk-bar]");
    if (!bar) { return; }
    var boxes = form.querySelectorAll('input[name="selected"]');
    var ticked = form.querySelectorAll('input[name="selected"]:checked').length;
    bar.hidden = boxes.length === 0;
    bar.toggleAttribute("data-active", ticked > 0);
    var count = bar.querySelector("[data-bulk-count]");
    if (count) {
      count.textContent = ticked === 0
        ? "Tick requests to decide several at once."
        : ticked + " selected";
    }
    var actions = bar.querySelectorAll("[data-bulk-action]");
    for (var i = 0; i < actions.length; i++) {
      actions[i].disabled = ticked === 0;
    }
    var all = bar.querySelector("[data-bulk-all]");
    if (all) {
      all.hidden = false;
      all.textContent = ticked === boxes.length ? "Clear the selection" : "Select all on this page";
    }
  }

  document.addEventListener("change", function (event) {
    if (event.target && event.target.name === "selected") { update(); }
  });
  document.addEventListener("click", function (event) {
    var all = event.target && event.target.closest && event.target.closest("[data-bulk-all]");
    if (!all) { return; }
    var boxes = document.querySelectorAll('#bulk input[name="selected"]');
    var ticked = document.querySelectorAll('#bulk input[name="selected"]:checked').length;
    for (var i = 0; i < boxes.length; i++) { boxes[i].checked = ticked !== boxes.length; }
    update();
  });
  // htmx swapped a row for its outcome: a ticked box may have gone with it.
  document.addEventListener("htmx:afterSettle", update);
  // The back button may restore ticked boxes from the browser's cache.
  window.addEventListener("pageshow", update);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", update);
  } else {
    update();
  }
})();
