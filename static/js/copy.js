// Copy buttons: <button data-copy-target="ID" data-copy-status="STATUS_ID" hidden>
// copies the value (or text) of element ID and writes "Copied" or an error into
// element STATUS_ID, a live region. The button stays hidden when
// this script does not run, and the value stays selectable text.
(function () {
  "use strict";

  var STATUS_CLEAR_MS = 5000;

  function valueOf(element) {
    return "value" in element ? element.value : element.textContent;
  }

  function copyBySelection(element) {
    element.focus();
    element.select();
    return document.execCommand("copy");
  }

  function copy(element) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(valueOf(element));
    }
    return copyBySelection(element) ? Promise.resolve() : Promise.reject(new Error("execCommand('copy') failed"));
  }

  function announce(status, text) {
    if (!status) {
      return;
    }
    status.textContent = text;
    window.clearTimeout(status.copyTimer);
    status.copyTimer = window.setTimeout(function () {
      status.textContent = "";
    }, STATUS_CLEAR_MS);
  }

  function enhance(button) {
    var target = document.getElementById(button.dataset.copyTarget);
    var status = document.getElementById(button.dataset.copyStatus);
    if (!target) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      copy(target).then(
        function () {
          announce(status, "Copied");
        },
        function () {
          target.focus();
          target.select();
          announce(status, "Copy failed. The text is selected: press Ctrl+C (Cmd+C on a Mac) to copy it.");
        }
      );
    });
  }

  function init() {
    document.querySelectorAll("button[data-copy-target]").forEach(enhance);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
