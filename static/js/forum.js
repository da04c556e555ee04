// Progressive enhancement for the post page: "Reply" moves the comment form under the
// comment; "Cancel reply" puts it back. Without JavaScript the links reload the page.
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }
  ready(function () {
    var respond = document.getElementById("respond");
    var form = document.getElementById("comment-form");
    if (!respond || !form) { return; }
    var parentInput = document.getElementById("parent_id");
    var title = document.getElementById("reply-title");
    var replying = document.getElementById("replying-to");
    var cancel = document.getElementById("cancel-reply");
    var home = document.createElement("div");
    respond.parentNode.insertBefore(home, respond);

    document.querySelectorAll("a.reply-link").forEach(function (link) {
      link.addEventListener("click", function (event) {
        event.preventDefault();
        var item = document.getElementById("comment-" + link.dataset.replyTo);
        if (!item) { return; }
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
      });
    }
  });
})();
