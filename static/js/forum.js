// Progressive enhancement for every page.
// - Post page: "Reply" moves the comment form under the comment; "Cancel reply" puts it
//   back and returns the focus to the Reply link that opened it. Without JavaScript the
//   links reload the page (?reply_to=ID#respond).
// - Code blocks in posts and comments that are wider than their column scroll inside
//   themselves, and so do wide tables; those get tabindex="0" so keyboard users can scroll
//   them too.
// - Forms with a preview panel: the panel follows the text as it is typed (debounced),
//   rendered by the server's preview endpoint, the code that renders the stored result.
//   Without JavaScript the Preview button answers with the same panel filled in.
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  function scrollableCode() {
    var wide = ".comment-text pre, .post-body pre, .comment-text table, .post-body table";
    document.querySelectorAll(wide).forEach(function (pre) {
      if (pre.scrollWidth > pre.clientWidth + 1) {
        pre.setAttribute("tabindex", "0");
      } else {
        pre.removeAttribute("tabindex");
      }
    });
  }

  function livePreview(panel) {
    var form = panel.closest("form");
    var body = form && form.querySelector("textarea[name=body]");
    var token = form && form.querySelector("input[name=csrf_token]");
    var target = panel.querySelector(".preview-body");
    if (!body || !token || !target || !window.fetch) { return; }
    var timer = null;
    var sent = 0;
    function update() {
      var mine = ++sent;
      var data = new FormData();
      data.append("csrf_token", token.value);
      data.append("body", body.value);
      data.append("body_format", panel.dataset.bodyFormat);
      data.append("kind", panel.dataset.kind);
      fetch(panel.dataset.previewUrl, { method: "POST", body: data, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          // An older answer arriving late must not replace a newer one.
          if (html === null || mine !== sent) { return; }
          target.innerHTML = html;
          panel.hidden = false;
          scrollableCode();
        })
        .catch(function () {});
    }
    body.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(update, 400);
    });
  }

  function replyForm() {
    var respond = document.getElementById("respond");
    var form = document.getElementById("comment-form");
    if (!respond || !form) { return; }
    var parentInput = document.getElementById("parent_id");
    var title = document.getElementById("reply-title");
    var replying = document.getElementById("replying-to");
    var cancel = document.getElementById("cancel-reply");
    var home = document.createElement("div");
    var opener = null;
    respond.parentNode.insertBefore(home, respond);

    document.querySelectorAll("a.reply-link").forEach(function (link) {
      link.addEventListener("click", function (event) {
        event.preventDefault();
        var item = document.getElementById("comment-" + link.dataset.replyTo);
        if (!item) { return; }
        opener = link;
        parentInput.value = link.dataset.replyTo;
        title.textContent = "Reply to " + link.dataset.replyName;
        if (replying) { replying.hidden = false; }
        item.querySelector(".comment-body").insertAdjacentElement("afterend", respond);
        var body = form.querySelector("textarea[name=body]");
        if (body) { body.focus(); }
      });
    });
    if (cancel) {
      cancel.addEventListener("click", function (event) {
        event.preventDefault();
        parentInput.value = "";
        title.textContent = "Leave a Reply";
        if (replying) { replying.hidden = true; }
        home.insertAdjacentElement("afterend", respond);
        // Back to where the reader was: the Reply link that opened the form (after a
        // reload of ?reply_to=ID, the Reply link of that comment).
        var back = opener || document.querySelector(
          '#comment-' + reloadedParentId(cancel) + ' .reply-link');
        opener = null;
        if (back) { back.focus(); } else { title.setAttribute("tabindex", "-1"); title.focus(); }
      });
    }
  }

  // The comment a reloaded reply form was for (?reply_to=ID): its id is in the link back.
  function reloadedParentId(cancel) {
    var link = cancel.parentNode.querySelector('a[href^="#comment-"]');
    return link ? link.getAttribute("href").slice("#comment-".length) : "";
  }

  ready(function () {
    replyForm();
    scrollableCode();
    document.querySelectorAll("[data-preview-url]").forEach(livePreview);
    var timer = null;
    window.addEventListener("resize", function () {
      clearTimeout(timer);
      timer = setTimeout(scrollableCode, 150);
    });
    // A form's action ends in the #fragment of its error summary, so that a refused form
    // opens there with the focus on it (no script needed). After a successful submission
    // the redirect inherits that fragment: drop it from the address.
    if (/-errors$/.test(location.hash) && !document.getElementById(location.hash.slice(1))) {
      history.replaceState(history.state, "", location.pathname + location.search);
    }
  });
})();
