/* Search snippets for the book opened from disk (see arlib/book/build/offline_search.py).
 *
 * Sphinx's search page fetches each result page to cut a snippet from it; browsers refuse fetch()
 * of file:// URLs. On the search page opened from disk, load the pages' texts
 * (arbook-search-texts.js, written at the end of the build) and answer those fetches from them.
 * Over HTTP nothing changes.
 */
(function () {
  "use strict";
  if (window.location.protocol !== "file:" || !/\/search\.html$/.test(window.location.pathname)) return;
  var here = document.currentScript && document.currentScript.src;
  var base = here ? here.slice(0, here.lastIndexOf("/") + 1) : "";
  var texts = new Promise(function (resolve) {
    var s = document.createElement("script");
    s.src = base + "arbook-search-texts.js";
    s.onload = function () { resolve(window.ARBOOK_SEARCH_TEXTS || {}); };
    s.onerror = function () { resolve({}); };
    document.head.appendChild(s);
  });
  function escape(t) {
    return t.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }
  var original = window.fetch;
  window.fetch = function (url, options) {
    if (typeof url !== "string" || !/\.html$/.test(url)) return original.apply(this, arguments);
    var root = document.documentElement.dataset.content_root || "";
    var doc = url.indexOf(root) === 0 ? url.slice(root.length, -5) : url.slice(0, -5);
    return texts.then(function (all) {
      if (!(doc in all)) return original.call(window, url, options);
      return new Response('<div role="main">' + escape(all[doc]) + "</div>", {
        status: 200, headers: { "Content-Type": "text/html" },
      });
    });
  };
})();
