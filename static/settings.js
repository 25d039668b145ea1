// Copy buttons of the settings pages: copy the text of the element named by data-copy.
// Served from our own origin so the pages keep a Content-Security-Policy without inline script.
"use strict";
document.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-copy]");
  if (!button) return;
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source) return;
  var text = source.textContent.trim();
  var label = button.textContent;
  function done(message) {
    button.textContent = message;
    button.setAttribute("data-copied", message === "Copied" ? "yes" : "no");
    setTimeout(function () { button.textContent = label; }, 2000);
  }
  function selectText() {
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(function () { done("Copied"); }, function () {
      selectText();
      done("Press Ctrl+C");
    });
  } else {
    // Plain-HTTP pages have no Clipboard API: select the text and use the legacy command.
    selectText();
    done(document.execCommand && document.execCommand("copy") ? "Copied" : "Press Ctrl+C");
  }
});
