/* Glue between the locally served widget embedder and this book; loaded after require.js and
 * before @jupyter-widgets/html-manager's embed-amd.js (see nb_ipywidgets_js in _config.yml).
 *
 * 1. embed-amd.js defines named AMD modules; webpack inside them locates the bundle's own
 *    files (the font files its CSS references) next to RequireJS's URL for the module,
 *    which by default is the *page's* folder. Point that module name at the folder the
 *    bundle is actually served from (this file's sibling `html-manager/`).
 * 2. ipywidgets' label typesetting calls MathJax 2's `MathJax.Hub.Queue`; the book loads
 *    MathJax 3, which has no `Hub`. Give it a small equivalent once MathJax is loaded
 *    (MathJax is a deferred script, so it exists by DOMContentLoaded, before the widgets
 *    are rendered).
 * 3. A slider's readout (the ε value next to it) is editable text in ipywidgets 8; typing a value
 *    that is not an option of a SelectionSlider leaves handle and figure where they were, and
 *    Enter empties it. The book's sliders are moved with the handle or the arrow keys only: every
 *    readout is kept read-only (ipywidgets sets it editable again on each update).
 * 4. A slider's figures are images the widget manager adds without alt text. Each gets one: the
 *    first sentence of its cell's caption (arlib.book.chapter.caption_block) and the ε it shows
 *    (the tick label at its place in the slider's stack).
 */
(function () {
  "use strict";
  var src = document.currentScript && document.currentScript.src;
  if (src && window.require && window.require.config) {
    var base = src.split("?")[0];
    base = base.slice(0, base.lastIndexOf("/") + 1);
    window.require.config({
      // Any "@jupyter-widgets/..." id resolves into the served bundle folder too: the
      // controls' CSS is loaded under such ids and its font URLs follow them.
      paths: {
        "@jupyter-widgets/html-manager/dist": base + "html-manager",
        "@jupyter-widgets": base + "html-manager",
      },
    });
  }

  function installHub() {
    var MJ = window.MathJax;
    if (!MJ || MJ.Hub) return;
    MJ.Hub = {
      Queue: function (job) {
        var el = Array.isArray(job) ? job[2] : undefined;
        var ready = MJ.startup && MJ.startup.promise ? MJ.startup.promise : Promise.resolve();
        ready
          .then(function () {
            if (MJ.typesetPromise) return MJ.typesetPromise(el ? [el] : undefined);
          })
          .catch(function (err) {
            console.warn("arbook: MathJax typesetting of a widget label failed", err);
          });
      },
    };
  }
  function readOnly(el) {
    if (el.classList && el.classList.contains("widget-readout") && el.contentEditable !== "false") {
      el.contentEditable = "false";
      el.removeAttribute("tabindex");
    }
  }
  function describe(img) {
    if (img.tagName !== "IMG" || img.alt || !img.closest(".widget-output")) return;
    var cell = img.closest("div.cell");
    var caption = cell && cell.querySelector(".arbook-caption");
    var text = caption ? caption.innerText.replace(/^\s*Figure [A-D]\d?\.\d+\.\s*/, "").split(/\.\s/)[0] : "Figure";
    var page = img.closest(".widget-output");
    var index = page && page.parentElement ? Array.prototype.indexOf.call(page.parentElement.children, page) : -1;
    var ticks = cell ? cell.querySelectorAll(".arbook-eps-tick") : [];
    img.alt = text + (index >= 0 && ticks[index] ? ", at ε = " + ticks[index].innerText.trim() : "");
  }
  function keepReadoutsReadOnly() {
    document.querySelectorAll(".widget-readout").forEach(readOnly);
    document.querySelectorAll(".widget-output img").forEach(describe);
    new MutationObserver(function (records) {
      records.forEach(function (r) {
        if (r.type === "attributes") {
          readOnly(r.target);
        } else {
          r.addedNodes.forEach(function (n) {
            if (n.nodeType !== 1) return;
            readOnly(n);
            describe(n);
            n.querySelectorAll(".widget-readout").forEach(readOnly);
            n.querySelectorAll(".widget-output img").forEach(describe);
          });
        }
      });
    }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["contenteditable"] });
  }
  function ready() {
    installHub();
    keepReadoutsReadOnly();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
