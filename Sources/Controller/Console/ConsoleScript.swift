/// The console's only script, served as `/console/console.js` (the Content-Security-Policy allows
/// no other, and nothing inline): every element with `data-live="URL"` is replaced by the HTML the
/// server sends as events named by its `data-event` on that event stream — fragments the server
/// rendered and escaped exactly like the page itself. Without it, pages reload instead.
enum ConsoleScript {
    static let source = """
    "use strict";
    document.querySelectorAll("[data-live]").forEach(function (element) {
      var stream = new EventSource(element.getAttribute("data-live"));
      stream.addEventListener(element.getAttribute("data-event"), function (event) {
        element.innerHTML = event.data;
        element.setAttribute("data-updated", String(Date.now()));
      });
    });
    """
}
