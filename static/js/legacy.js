// An old WordPress link ends in "#comment-N", N the comment's id on the old blog. The
// server never sees that part; it redirected the old address here marked with ?wp=1,
// so ask it where that comment is now (forum/legacy/views.py).
"use strict";
(function () {
  var match = /^#comment-([0-9]{1,19})$/.exec(window.location.hash);
  if (!match || !new URLSearchParams(window.location.search).has("wp")) {
    return;
  }
  var comments = document.getElementById("comments");
  var url = comments && comments.getAttribute("data-old-comment-url");
  if (url) {
    window.location.replace(url.replace(/N$/, match[1]));
  }
})();
