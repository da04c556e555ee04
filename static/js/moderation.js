// The moderation queue without page reloads: act with fetch (the CSRF token goes in the
// X-CSRFToken header), keyboard shortcuts, undo, and the next page loaded as the list
// empties. Without JavaScript every button is a plain form and still works.
//
// Keys: j/k next/previous, a approve, s spam, r reject, x select, u undo, ? help.
// With a selection, a/s/r act on the whole selection; otherwise on the current item. The
// current item is the one with the keyboard focus inside it (or the last one that had it).
//
// Actions go to the server one at a time, in the order they were made: each answer then
// reflects every action before it, so the counts it carries are the ones to show, and an
// undo pressed right after an action finds that action's batch.
(function () {
  "use strict";

  var queue = null;
  var csrf = "";
  var current = null;
  var undoStack = []; // [{batch, items}], newest last
  var waiting = []; // keys pressed while the next page was still loading
  var loadingMore = false;
  var chain = Promise.resolve(); // the actions, one after another
  var inflight = 0;
  var PREFETCH_WHEN_LEFT = 3;
  // Which key takes which action: the server's vocabulary (models.Action), never retyped here.
  var keyActions = {};

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  ready(function () {
    queue = document.getElementById("queue");
    if (!queue || queue.dataset.single) { return; }
    csrf = queue.dataset.csrf || "";
    keyActions = JSON.parse(queue.dataset.keys || "{}");
    queue.addEventListener("submit", onItemSubmit);
    var bulkForm = document.getElementById("bulk-form");
    if (bulkForm) { bulkForm.addEventListener("submit", onBulkSubmit); }
    var selectAll = document.getElementById("select-all");
    if (selectAll) { selectAll.addEventListener("change", onSelectAll); }
    var notice = document.getElementById("notice");
    if (notice) { notice.addEventListener("submit", onNoticeSubmit); }
    var undoButton = document.getElementById("undo-button");
    if (undoButton) {
      // An action done without a reload (or before it) can still be undone with "u".
      undoStack.push({ batch: undoButton.form.elements.batch.value, items: [] });
    }
    document.addEventListener("keydown", onKey);
    queue.addEventListener("focusin", onFocusIn);
    var help = document.getElementById("help-link");
    if (help) {
      help.addEventListener("click", function (event) {
        event.preventDefault();
        openHelp();
      });
    }
    setCurrent(liveItems()[0] || null, false);
    var pager = document.getElementById("queue-pager");
    if (pager) { pager.hidden = true; }
    maybeLoadMore();
  });

  // Items and the current one -------------------------------------------------------

  function liveItems() {
    return Array.prototype.slice.call(queue.querySelectorAll(".queue-item:not(.is-done)"));
  }

  function setCurrent(item, scroll) {
    if (current) { current.classList.remove("is-current"); }
    current = item;
    if (!item) { return; }
    item.classList.add("is-current");
    if (scroll) {
      item.focus({ preventScroll: true });
      item.scrollIntoView({ block: "nearest" });
    }
  }

  function move(delta) {
    var items = liveItems();
    if (!items.length) { return; }
    var index = items.indexOf(current);
    var next = index < 0 ? 0 : Math.min(items.length - 1, Math.max(0, index + delta));
    setCurrent(items[next], true);
    maybeLoadMore();
  }

  function itemById(id) {
    return queue.querySelector('.queue-item[data-id="' + id + '"]');
  }

  function selectedItems() {
    return liveItems().filter(function (item) {
      var box = item.querySelector(".select-item");
      return box && box.checked;
    });
  }

  // The first item still live after the given ones: what becomes current next.
  function nextAfter(done) {
    var items = liveItems();
    var last = items.indexOf(done[done.length - 1]);
    for (var i = last + 1; i < items.length; i++) {
      if (done.indexOf(items[i]) < 0) { return items[i]; }
    }
    for (var j = items.length - 1; j >= 0; j--) {
      if (done.indexOf(items[j]) < 0) { return items[j]; }
    }
    return null;
  }

  function hide(items) {
    items.forEach(function (item) {
      item.classList.add("is-done");
      item.hidden = true;
      var box = item.querySelector(".select-item");
      if (box) { box.checked = false; }
    });
    var selectAll = document.getElementById("select-all");
    if (selectAll) { selectAll.checked = false; }
    updateEmpty();
  }

  function unhide(items) {
    items.forEach(function (item) {
      item.classList.remove("is-done");
      item.hidden = false;
    });
    updateEmpty();
  }

  function updateEmpty() {
    var empty = document.getElementById("queue-empty");
    if (empty) { empty.hidden = liveItems().length > 0 || loadingMore || !!queue.dataset.nextUrl; }
  }

  // Talking to the server ---------------------------------------------------------

  // Runs `task` (which returns a promise) after every task queued before it.
  function enqueue(task) {
    inflight++;
    var result = chain.then(task);
    chain = result.then(function () { inflight--; }, function () { inflight--; });
    return result;
  }

  function post(url, params) {
    return enqueue(function () { return send(url, params); });
  }

  function send(url, params) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "X-CSRFToken": csrf,
        "Accept": "application/json",
        "Content-Type": "application/x-www-form-urlencoded"
      },
      body: params.toString()
    }).then(function (response) {
      return response.json().catch(function () {
        return { ok: false, message: "The server answered " + response.status + "." };
      }).then(function (data) {
        if (!response.ok || !data.ok) {
          throw new Error(data.message || ("The server answered " + response.status + "."));
        }
        if (data.counts) { updateCounts(data.counts); }
        return data;
      });
    });
  }

  function updateCounts(counts) {
    Object.keys(counts).forEach(function (tab) {
      var el = document.getElementById("count-" + tab);
      if (el) { el.textContent = counts[tab]; }
    });
    var badge = document.getElementById("pending-badge");
    if (badge) {
      badge.textContent = counts.pending;
      badge.hidden = !counts.pending;
    }
  }

  function reasonParams() {
    var params = new URLSearchParams();
    var reason = document.getElementById("bulk-reason");
    if (reason && reason.value) { params.append("reason", reason.value); }
    return params;
  }

  // Act on items optimistically: they leave the list at once and come back on an error.
  function act(items, url, params) {
    if (!items.length) { return; }
    var next = nextAfter(items);
    hide(items);
    setCurrent(next, true);
    maybeLoadMore();
    post(url, params).then(function (data) {
      // Comments the action did not apply to stay in the list.
      var refused = (data.refused || []).map(String);
      unhide(items.filter(function (item) { return refused.indexOf(item.dataset.id) >= 0; }));
      if (data.batch) { undoStack.push({ batch: data.batch, items: items }); }
      showNotice(data.message, !!data.batch, data.pending_parents || []);
    }).catch(function (error) {
      unhide(items);
      setCurrent(items[0], true);
      showNotice(error.message, false, []);
    });
  }

  function decide(action) {
    var chosen = selectedItems();
    if (chosen.length) {
      bulk(action, chosen);
      return;
    }
    if (!current) {
      // Faster than the next page arrived: keep the key and act once it is here.
      if (loadingMore || queue.dataset.nextUrl) {
        waiting.push(action);
        maybeLoadMore();
      }
      return;
    }
    var button = current.querySelector('button[data-action="' + action + '"]');
    if (!button) {
      showNotice("“" + action + "” does not apply to this comment.", false, []);
      return;
    }
    act([current], button.getAttribute("formaction"), reasonParams());
  }

  function bulk(action, items) {
    var params = reasonParams();
    params.append("action", action);
    items.forEach(function (item) { params.append("ids", item.dataset.id); });
    act(items, queue.dataset.bulkUrl, params);
  }

  function undoLast() {
    // Queued behind the actions still on their way, so the last one can be undone too.
    var last = null;
    enqueue(function () {
      last = undoStack.pop();
      if (!last) {
        showNotice("Nothing to undo.", false, []);
        return null;
      }
      var params = new URLSearchParams();
      params.append("batch", last.batch);
      return send(queue.dataset.undoUrl, params);
    }).then(function (data) {
      if (!data) { return; }
      unhide(last.items);
      if (last.items.length) { setCurrent(last.items[0], true); }
      showNotice(data.message, false, []);
    }).catch(function (error) {
      showNotice(error.message, false, []);
    });
  }

  function maybeLoadMore() {
    var url = queue.dataset.nextUrl;
    if (!url || loadingMore) { return; }
    var items = liveItems();
    var left = items.length - (items.indexOf(current) + 1);
    if (left >= PREFETCH_WHEN_LEFT) { return; }
    loadingMore = true;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("The server answered " + response.status + "."); }
        return response.json();
      })
      .then(function (data) {
        var holder = document.createElement("template");
        holder.innerHTML = data.html;
        Array.prototype.slice.call(holder.content.querySelectorAll(".queue-item")).forEach(function (item) {
          if (!itemById(item.dataset.id)) { queue.appendChild(item); }
        });
        queue.dataset.nextUrl = data.next_url || "";
        // Counts read while an action was on its way may predate it: that answer will say.
        if (data.counts && !inflight) { updateCounts(data.counts); }
        loadingMore = false;
        if (!current) { setCurrent(liveItems()[0] || null, true); }
        updateEmpty();
        while (waiting.length && current) { decide(waiting.shift()); }
        maybeLoadMore();
      })
      .catch(function (error) {
        loadingMore = false;
        waiting = [];
        updateEmpty();
        showNotice("Could not load more comments: " + error.message, false, []);
      });
  }

  // The notice under the tabs: what was done, with Undo and "approve the parent too".

  function showNotice(message, undoable, parents) {
    var notice = document.getElementById("notice");
    if (!notice) { return; }
    notice.textContent = "";
    notice.classList.remove("is-empty");
    notice.hidden = false;
    var text = document.createElement("span");
    text.className = "notice-text";
    text.id = "notice-text";
    text.textContent = message;
    notice.appendChild(text);
    if (undoable) {
      var undo = document.createElement("button");
      undo.type = "button";
      undo.className = "undo-button";
      undo.id = "undo-button";
      undo.textContent = "Undo";
      undo.addEventListener("click", undoLast);
      notice.appendChild(document.createTextNode(" "));
      notice.appendChild(undo);
    }
    if (parents.length) {
      var offer = document.createElement("button");
      offer.type = "button";
      offer.id = "approve-parents";
      offer.textContent = parents.length === 1 ? "Its parent is pending: approve it too" : "Their parents are pending: approve them too";
      offer.addEventListener("click", function () {
        var params = new URLSearchParams();
        params.append("action", keyActions.a);
        parents.forEach(function (id) { params.append("ids", id); });
        var shown = parents.map(itemById).filter(function (item) { return item && !item.classList.contains("is-done"); });
        act(shown, queue.dataset.bulkUrl, params);
        if (!shown.length) {
          post(queue.dataset.bulkUrl, params).then(function (data) {
            if (data.batch) { undoStack.push({ batch: data.batch, items: [] }); }
            showNotice(data.message, !!data.batch, []);
          }).catch(function (error) { showNotice(error.message, false, []); });
        }
      });
      notice.appendChild(document.createTextNode(" "));
      notice.appendChild(offer);
    }
    notice.hidden = false;
  }

  // Events ------------------------------------------------------------------------

  function onItemSubmit(event) {
    var form = event.target;
    if (!form.classList.contains("item-actions")) { return; }
    var button = event.submitter;
    if (!button || !button.dataset.action) { return; }
    event.preventDefault();
    var item = form.closest(".queue-item");
    act([item], button.getAttribute("formaction"), reasonParams());
  }

  function onBulkSubmit(event) {
    var button = event.submitter;
    if (!button || button.name !== "action") { return; }
    event.preventDefault();
    var chosen = selectedItems();
    if (!chosen.length) {
      showNotice("Select at least one comment first.", false, []);
      return;
    }
    bulk(button.value, chosen);
  }

  function onSelectAll(event) {
    var on = event.target.checked;
    liveItems().forEach(function (item) {
      var box = item.querySelector(".select-item");
      if (box) { box.checked = on; }
    });
  }

  function onNoticeSubmit(event) {
    // The server-rendered notice (after a reload): undo through the stack, parents via fetch.
    var form = event.target;
    event.preventDefault();
    if (form.elements.batch) {
      undoLast();
      return;
    }
    var params = new URLSearchParams(new FormData(form));
    params.delete("csrf_token");
    params.delete("next");
    post(form.action, params).then(function (data) {
      if (data.batch) { undoStack.push({ batch: data.batch, items: [] }); }
      showNotice(data.message, !!data.batch, []);
    }).catch(function (error) { showNotice(error.message, false, []); });
  }

  // Focus inside an item (a click, Tab onto its buttons) makes it the current one.
  function onFocusIn(event) {
    var item = event.target.closest && event.target.closest(".queue-item");
    if (item && item !== current && !item.classList.contains("is-done")) { setCurrent(item, false); }
  }

  function openHelp() {
    var dialog = document.getElementById("shortcuts-dialog");
    if (!dialog) {
      var aside = document.getElementById("shortcuts");
      if (!aside) { return; }
      dialog = document.createElement("dialog");
      dialog.id = "shortcuts-dialog";
      dialog.className = "shortcuts-dialog";
      dialog.setAttribute("aria-labelledby", "shortcuts-title");
      dialog.appendChild(aside);
      var close = document.createElement("button");
      close.type = "button";
      close.textContent = "Close";
      close.addEventListener("click", function () { dialog.close(); });
      dialog.appendChild(close);
      document.body.appendChild(dialog);
    }
    if (!dialog.open) { dialog.showModal(); }
  }

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var dialog = document.getElementById("shortcuts-dialog");
    if (dialog && dialog.open) { return; }
    var target = event.target;
    if (target && (target.isContentEditable || /^(TEXTAREA|SELECT)$/.test(target.tagName) ||
        (target.tagName === "INPUT" && target.type !== "checkbox"))) { return; }
    switch (event.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "a": case "s": case "r": decide(keyActions[event.key]); break;
      case "u": undoLast(); break;
      case "?": openHelp(); break;
      case "x":
        if (current) {
          var box = current.querySelector(".select-item");
          if (box) { box.checked = !box.checked; }
        }
        break;
      default: return;
    }
    event.preventDefault();
  }
})();
